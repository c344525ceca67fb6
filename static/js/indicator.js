// The connection indicator: state in words (for everyone, screen readers included) and in colour.
// The words come from the page's data (`text`, orders/views.py page_text), in the page's language.

import { pageText } from "./format.js";

// The worst of several sockets' states is what the page as a whole is.
const RANK = { live: 0, connecting: 1, reconnecting: 2, offline: 3 };

export function bindIndicator(element) {
  const text = element.querySelector(".connection-text");
  const words = pageText();
  const states = new Map();
  return function update(source, state, detail = "") {
    states.set(source, { state, detail });
    let worst = { state: "live", detail: "" };
    for (const entry of states.values()) {
      if (RANK[entry.state] > RANK[worst.state]) worst = entry;
    }
    element.dataset.state = worst.state;
    const name = words[worst.state] || worst.state;
    text.textContent = worst.detail ? `${name} (${words[worst.detail] || worst.detail})` : name;
  };
}
