// The staff board's own status changes: each row's form posts POST /api/orders/<id>/status/ with the page's
// session and CSRF token. The state machine decides: a refused change shows its reason in the row, an accepted
// one is shown at once (the live frame that follows has the same seq and changes nothing).

import { applyStatus, body, label, say } from "./board-rows.js";

const csrfToken = () => document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";

async function changeStatus(row, form) {
  const select = form.querySelector("select");
  const button = form.querySelector("button");
  const result = form.querySelector(".change-result");
  const wanted = select.value;
  button.disabled = true;
  result.classList.remove("refused");
  result.textContent = say("changing");
  try {
    const response = await fetch(`/api/orders/${row.dataset.orderId}/status/`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ status: wanted }),
    });
    const answer = await response.json().catch(() => ({}));
    if (response.ok) {
      const { order, event } = answer;
      applyStatus({ order_id: order.id, number: order.number, seq: order.seq, status: order.status,
                    previous: event.previous, at: order.status_changed_at }, { add: true });
      result.textContent = say("changed", { status: label(order.status) });
    } else {
      // 409: the state machine's reason; 403, 422: the API's.
      result.classList.add("refused");
      result.textContent = say("refused", { reason: answer.detail || response.statusText });
      select.value = row.querySelector(".status-badge").dataset.status;
    }
  } catch (error) {
    result.classList.add("refused");
    result.textContent = say("failed", { reason: String(error.message || error) });
  } finally {
    button.disabled = false;
  }
}

export function bindStatusForms() {
  body.addEventListener("submit", (event) => {
    const form = event.target.closest("form.status-change");
    if (!form) return;
    event.preventDefault();
    changeStatus(form.closest("tr"), form);
  });
}
