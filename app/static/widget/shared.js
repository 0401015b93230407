// @ts-check
/* homing.js: the client pieces the widget shares with the workbench (the socket that
 * reconnects with back-off, message cards built from text nodes, client ids, formatters).
 * It stays a classic script (the workbench loads it as one) that sets window.Homing; this
 * module loads it into the shop's page and gives it types. */

/**
 * @typedef {object} SocketHandlers
 * @property {(frame: import("./frames.js").ServerFrame) => void} onFrame
 * @property {() => void} [onUp]
 * @property {() => void} [onDown]
 * @property {() => void} [onUnauthorized] closed with 4401: the token is refused, no retries
 */

/**
 * A WebSocket that comes back by itself (jittered back-off, 0.5 s up to 15 s) and keeps
 * under the server's frame rate.
 * @typedef {object} HomingSocket
 * @property {() => void} start
 * @property {() => void} stop
 * @property {(frame: import("./frames.js").ClientFrame) => boolean} send false when not connected
 */

/**
 * Properties for `el`: `className`, `text`, `dataset`, `on<event>` handlers, other attributes.
 * @typedef {Record<string, any>} ElProps
 */

/** @typedef {Node | string | number | null | undefined | false} ElChild */

/**
 * @typedef {object} HomingShared
 * @property {new (url: string, handlers: SocketHandlers) => HomingSocket} Socket
 * @property {() => string} newClientId
 * @property {<K extends keyof HTMLElementTagNameMap>(tag: K, props?: ElProps | null, children?: ElChild | ElChild[]) => HTMLElementTagNameMap[K]} el
 * @property {(cents: number | undefined) => string} money
 * @property {(msg: {kind: string, body?: string, payload?: Record<string, any> | null}, lang: string, imageUrl: (uploadId: string) => string) => HTMLElement} messageContent
 * @property {(list: HTMLElement, node: HTMLElement, seq: number) => void} insertBySeq
 * @property {(iso?: string | null) => string} clockTime
 * @property {(catalog: Record<string, string | string[]>) => void} setCatalog the page's gettext catalog (a flat JSON)
 * @property {(msgid: string) => string} gettext
 * @property {(text: string, params?: Record<string, any>) => string} format fills `%(name)s` placeholders
 * @property {(msg: {kind: string, body?: string, payload?: Record<string, any> | null}) => string} messageText a message's words in the reader's language
 * @property {(code: string) => string} aftersaleType an after-sales type's label
 * @property {(code: string) => string} aftersaleStatus an after-sales status's label
 */

/**
 * Load homing.js from the server (unless the page has it) and call `done` with it; a failed
 * load calls nothing (the widget cannot run without it).
 * @param {string} server
 * @param {(homing: HomingShared) => void} done
 */
export function loadShared(server, done) {
  const win = /** @type {Window & {Homing?: HomingShared}} */ (window);
  if (win.Homing) {
    done(win.Homing);
    return;
  }
  const tag = document.createElement("script");
  tag.src = `${server}/static/homing.js`;
  tag.onload = () => {
    if (win.Homing) done(win.Homing);
  };
  (document.head || document.documentElement).append(tag);
}
