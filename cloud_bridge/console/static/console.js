// Console behaviour without a framework: keyboard shortcuts on the request
// page and a queue that refreshes itself every few seconds. Text from the
// server is set with textContent, never parsed as HTML.
"use strict";

function onRequestPage() {
  const approve = document.getElementById("approve-form");
  const reason = document.getElementById("reason");
  document.addEventListener("keydown", (event) => {
    const tag = (event.target && event.target.tagName) || "";
    if (["INPUT", "SELECT", "TEXTAREA"].includes(tag) || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    const key = event.key.toLowerCase();
    if (key === "a" && approve) {
      event.preventDefault();
      approve.requestSubmit();
    } else if (key === "r" && reason) {
      event.preventDefault();
      reason.focus();
    } else if (key === "q") {
      window.location.href = "/console/queue";
    }
  });
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function renderQueue(body, items) {
  const canDecide = body.dataset.canDecide === "yes";
  const checked = new Set(Array.from(body.querySelectorAll("input:checked")).map((i) => i.value));
  const rows = items.map((item) => {
    const row = document.createElement("tr");
    const pick = cell(row, "");
    if (item.clean && canDecide) {
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = "request_id";
      box.value = item.request_id;
      box.checked = checked.has(item.request_id);
      box.setAttribute("aria-label", "Chọn " + item.citizen_name);
      pick.appendChild(box);
    }
    cell(row, Math.floor(item.waiting_s / 60) + " phút");
    const name = cell(row, "");
    const link = document.createElement("a");
    link.href = "/console/requests/" + encodeURIComponent(item.request_id);
    link.textContent = item.citizen_name;
    name.appendChild(link);
    cell(row, item.document);
    const check = cell(row, "");
    const badge = document.createElement("span");
    badge.className = item.clean ? "ok" : "warn";
    badge.textContent = item.clean ? "Đạt" : "Cần xem";
    check.appendChild(badge);
    return row;
  });
  body.replaceChildren(...rows);
  const count = document.getElementById("queue-count");
  if (count) {
    count.textContent = items.length + " yêu cầu đang chờ";
  }
}

function onQueuePage(body) {
  const refresh = async () => {
    try {
      const response = await fetch("/console/queue.json", { credentials: "same-origin" });
      if (response.status === 401) {
        window.location.href = "/console/login";
        return;
      }
      if (response.ok) {
        renderQueue(body, (await response.json()).items);
      }
    } catch (error) {
      // The network is down; keep showing the last queue and try again.
    }
  };
  window.setInterval(refresh, 3000);
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.getElementById("approve-form") || document.getElementById("reject-form")) {
    onRequestPage();
  }
  const body = document.getElementById("queue-body");
  if (body) {
    onQueuePage(body);
  }
});
