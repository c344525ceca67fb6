// Small display helpers shared by the pages.

export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, {
    day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
}

// The server renders times in UTC; show them, like the live ones, in the reader's own time zone.
export function localizeTimes(root = document) {
  for (const time of root.querySelectorAll("time[datetime]")) time.textContent = formatTime(time.dateTime);
}

export function timeElement(iso) {
  const time = document.createElement("time");
  time.dateTime = iso;
  time.textContent = formatTime(iso);
  return time;
}

export function pageData() {
  return JSON.parse(document.getElementById("page-data").textContent);
}
