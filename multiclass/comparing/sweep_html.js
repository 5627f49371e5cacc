// sweep.html's one script: click a table's header to sort its rows by that column (numbers as
// numbers, text as text, empty cells last either way); click it again to reverse. A cell sorts
// by its data-sort attribute, which sweep_html.py writes, else by its text.
"use strict";

function sortKey(cell) {
  const text = (cell.dataset.sort ?? cell.textContent).trim();
  if (text === "") return null;
  const number = Number(text);
  return Number.isNaN(number) ? text : number;
}

function compare(a, b) {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

function sortBy(table, header, column) {
  const descending = header.getAttribute("aria-sort") === "ascending";
  for (const other of table.tHead.rows[0].cells) other.removeAttribute("aria-sort");
  header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  const body = table.tBodies[0];
  const keyed = Array.from(body.rows, (row) => [sortKey(row.cells[column]), row]);
  keyed.sort(([a], [b]) => {
    if (a === null || b === null) return (a === null) - (b === null);
    return descending ? compare(b, a) : compare(a, b);
  });
  for (const [, row] of keyed) body.appendChild(row);
}

for (const table of document.querySelectorAll("table.sortable")) {
  Array.from(table.tHead.rows[0].cells).forEach((header, column) => {
    header.addEventListener("click", () => sortBy(table, header, column));
  });
}
