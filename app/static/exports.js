/* The console's CSV exports: the download is fetched as a stream so the page can show its
 * progress (rows and bytes so far, of the rows the server counted: X-Export-Rows) while
 * the server writes it page by page; then it is saved under the server's file name.
 * Words come from the page (<template id="export-words">, rendered from the catalogs). */
(function () {
  "use strict";
  if (window.HomingExports) return; // the tab may be swapped in again by htmx
  window.HomingExports = true;

  function fill(text, params) {
    return text.replace(/%\((\w+)\)s/g, (whole, name) => (name in params ? String(params[name]) : whole));
  }

  function word(root, name) {
    const tpl = root.querySelector("#export-words");
    const node = tpl && tpl.content.querySelector(`[data-word="${name}"]`);
    return node ? node.textContent : name;
  }

  function size(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  }

  function fileName(disposition, fallback) {
    const m = /filename\*=UTF-8''([^;]+)/i.exec(disposition || "");
    return m ? decodeURIComponent(m[1]) : fallback;
  }

  async function run(box, button) {
    const kind = button.dataset.export;
    const label = button.textContent.trim();
    const params = new URLSearchParams({ from: box.dataset.from || "", to: box.dataset.to || "" });
    const bar = box.querySelector("progress");
    const status = box.querySelector(".export-status");
    const panel = box.querySelector(".export-progress");
    for (const b of box.querySelectorAll("button[data-export]")) b.disabled = true;
    panel.hidden = false;
    box.dataset.state = "running";
    bar.removeAttribute("value");
    try {
      const res = await fetch(`/api/v1/exports/${kind}.csv?${params}`, { credentials: "same-origin" });
      if (!res.ok) {
        let reason = String(res.status);
        try { reason = (await res.json()).error.message; } catch (_) { /* not JSON */ }
        throw new Error(reason);
      }
      const total = Number(res.headers.get("X-Export-Rows") || "0");
      const reader = res.body.getReader();
      const chunks = [];
      let bytes = 0;
      let lines = 0;
      let shown = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        bytes += value.length;
        for (let i = 0; i < value.length; i++) if (value[i] === 10) lines++;
        const rows = Math.min(Math.max(0, lines - 1), total);
        const now = performance.now();
        if (now - shown > 100) {
          shown = now;
          if (total) bar.value = Math.round((rows / total) * 100);
          status.textContent = fill(word(box, "progress"), { kind: label, rows, total, size: size(bytes) });
          box.dataset.rows = String(rows);
        }
      }
      const rows = Math.min(Math.max(0, lines - 1), total);
      const name = fileName(res.headers.get("Content-Disposition"), `${kind}.csv`);
      const url = URL.createObjectURL(new Blob(chunks, { type: "text/csv" }));
      const a = document.createElement("a");
      a.href = url;
      a.download = name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      bar.value = 100;
      box.dataset.rows = String(rows);
      box.dataset.state = "done";
      status.textContent = fill(word(box, "done"), { kind: label, rows, size: size(bytes), file: name });
    } catch (err) {
      box.dataset.state = "failed";
      status.textContent = fill(word(box, "failed"), { reason: err.message || String(err) });
    } finally {
      for (const b of box.querySelectorAll("button[data-export]")) b.disabled = false;
    }
  }

  document.addEventListener("click", (ev) => {
    const button = ev.target.closest && ev.target.closest("button[data-export]");
    const box = button && button.closest("#exports");
    if (box) run(box, button);
  });
})();
