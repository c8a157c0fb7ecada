import { message } from "./message.js";

function render(text) {
  document.querySelector("#message").textContent = text;
}

render(message);

// Hot module replacement: a new message.js is swapped in without a reload.
if (import.meta.hot) {
  import.meta.hot.accept("./message.js", (mod) => mod && render(mod.message));
}
