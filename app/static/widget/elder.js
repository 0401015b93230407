// @ts-check
/* Elder mode (长辈模式): the same screens in fewer, simpler words and bigger type. The
 * buyer turns it on or off with the button in the header; the server remembers it (it also
 * routes later conversations to the elderly queue) and says so in `hello` and `elder_mode`. */

import { ELDER_WORDS, WORDS, fill } from "./strings.js";
import { renderWords } from "./view.js";

/**
 * The words of the moment: elder mode's when it is on and has them, else the plain ones.
 * @param {import("./state.js").State} state
 * @param {import("./strings.js").Lang} lang
 * @returns {import("./state.js").Widget["w"]}
 */
export function wordsFor(state, lang) {
  return (key, vars) => fill((state.elder && ELDER_WORDS[lang][key]) || WORDS[lang][key], vars);
}

/** @param {import("./state.js").Widget} widget */
export function bindElderToggle(widget) {
  widget.ui.elder.addEventListener("click", () =>
    widget.socket.send({ type: "elder_mode", on: !widget.state.elder }),
  );
}

/**
 * The server's answer (and any other tab's change).
 * @param {import("./state.js").Widget} widget
 * @param {import("./frames.js").ElderModeFrame} f
 */
export function onElderMode(widget, f) {
  widget.state.elder = Boolean(f.on);
  renderWords(widget);
}
