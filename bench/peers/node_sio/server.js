// A Node.js socket.io relay for the Homing bench: buyer -> agent -> buyer, no storage.
//
// The same rooms, events and semantics as bench/peers/sio_relay.py (python-socketio), so the
// bench's raw Engine.IO v4 client drives it unchanged: clients connect with the query
// `role=buyer|agent&id=...&agent=...` and join a room named by their id; "message.send" in,
// "message.ack" to the sender, "message.new" to the other side's room.
//
// With `--redis URL --channel PREFIX` it uses @socket.io/redis-adapter (Redis pub/sub), so
// two processes on one Redis behave as one server: what a multi-node Node deployment does.
//
//   node server.js --port 8001 [--redis redis://127.0.0.1:6379/0 --channel bench-node-sio-x]
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

async function main() {
  const port = Number(arg("port"));
  if (!port) throw new Error("--port is required");
  const redisUrl = arg("redis", "");
  const channel = arg("channel", "bench-node-sio");

  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    cors: { origin: "*" },
    pingInterval: 20000, // as the python-socketio peer
    pingTimeout: 20000,
    serveClient: false,
  });

  if (redisUrl) {
    const { createClient } = require("redis");
    const { createAdapter } = require("@socket.io/redis-adapter");
    const pub = createClient({ url: redisUrl });
    const sub = pub.duplicate();
    for (const c of [pub, sub]) c.on("error", (err) => console.error("redis:", err.message));
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub, { key: channel }));
  }

  io.on("connection", (socket) => {
    const q = socket.handshake.query;
    const role = String(q.role || "");
    const ident = String(q.id || "");
    const agent = String(q.agent || "");
    socket.join(ident);

    socket.on("message.send", (f) => {
      f = f || {};
      let target, conv;
      if (role === "buyer") {
        target = agent;
        conv = ident;
      } else {
        target = conv = f.conversation_id || "";
      }
      const msg = {
        conversation_id: conv,
        sender: role,
        sender_id: ident,
        body: f.body,
        client_msg_id: f.client_msg_id,
      };
      socket.emit("message.ack", { client_msg_id: f.client_msg_id, message: msg });
      io.to(target).emit("message.new", { message: msg });
    });
  });

  httpServer.listen(port, "127.0.0.1");
  const stop = () => {
    io.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
