// Small display helpers shared by the pages: dates in the reader's time zone and the page's language.

// The page's language (<html lang>, set by the server from the visitor's choice or Accept-Language).
export function pageLanguage() {
  return document.documentElement.lang || undefined;
}

export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  // No timeZone option: the browser's own time zone.
  return new Intl.DateTimeFormat(pageLanguage(), {
    day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  }).format(date);
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

// "12 s ago" / "vor 12 Sek." in the page's language.
export function ago(seconds) {
  const format = new Intl.RelativeTimeFormat(pageLanguage(), { numeric: "auto", style: "short" });
  return seconds < 60 ? format.format(-seconds, "second") : format.format(-Math.floor(seconds / 60), "minute");
}

export function pageData() {
  return JSON.parse(document.getElementById("page-data").textContent);
}

// The words the page's JavaScript shows, translated by the server (page data `text`).
export function pageText() {
  const element = document.getElementById("page-data");
  return (element && JSON.parse(element.textContent).text) || {};
}
