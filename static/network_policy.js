// The network page's policy editor: add and remove allowed pairs (rows of the form).
(function () {
  "use strict";
  const table = document.getElementById("policy-table");
  const add = document.getElementById("policy-add");
  if (!table || !add) return;
  const body = table.tBodies[0];

  function clear(row) {
    row.querySelectorAll("select").forEach((select) => { select.selectedIndex = 0; });
    row.querySelectorAll("input").forEach((input) => { input.value = ""; });
  }

  add.addEventListener("click", () => {
    const row = body.rows[body.rows.length - 1].cloneNode(true);
    clear(row);
    body.appendChild(row);
    row.querySelector("select").focus();
  });

  body.addEventListener("click", (event) => {
    const button = event.target.closest("[data-remove-row]");
    if (!button) return;
    const row = button.closest("tr");
    if (body.rows.length > 1) row.remove();
    else clear(row);  // the last row stays, empty, to add a pair
  });
})();
