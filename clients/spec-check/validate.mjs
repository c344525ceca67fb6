// Validates an AsyncAPI document with the official parser: prints each diagnostic, exits 1 on any error or
// warning, 0 when the document parses clean. Usage: node validate.mjs <document.yaml|json>
import { readFile } from "node:fs/promises";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const path = process.argv[2];
if (!path) {
  console.error("usage: node validate.mjs <document>");
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await parser.parse(await readFile(path, "utf8"), { source: path });
const severities = { [DiagnosticSeverity.Error]: "error", [DiagnosticSeverity.Warning]: "warning",
                     [DiagnosticSeverity.Information]: "info", [DiagnosticSeverity.Hint]: "hint" };
let failed = document === undefined;
for (const diagnostic of diagnostics) {
  const severity = severities[diagnostic.severity] ?? String(diagnostic.severity);
  const where = diagnostic.path.join("/");
  console.log(`${severity}: ${diagnostic.code}: ${diagnostic.message} (at /${where})`);
  if (diagnostic.severity <= DiagnosticSeverity.Warning) failed = true;
}
if (failed) process.exit(1);
console.log(`ok: AsyncAPI ${document.version()}, ${document.channels().length} channels, ` +
            `${document.allMessages().length} messages`);
