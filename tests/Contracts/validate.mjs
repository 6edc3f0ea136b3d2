// Validates an AsyncAPI document with the official parser (@asyncapi/parser, pinned by
// package-lock.json). Prints each diagnostic as a JSON line, then a summary line; exits 1 on any
// error-level diagnostic or when the document does not parse.
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';

const file = process.argv[2];
const { document, diagnostics } = await new Parser().parse(readFileSync(file, 'utf8'));
for (const d of diagnostics) {
  console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
}
const errors = diagnostics.filter((d) => d.severity === 0);
if (!document || errors.length > 0) {
  console.log(JSON.stringify({ ok: false, errors: errors.length }));
  process.exit(1);
}
console.log(JSON.stringify({
  ok: true,
  version: document.version(),
  channels: document.channels().all().map((c) => c.address()),
  operations: document.operations().length,
  messages: document.messages().all().map((m) => m.name()),
}));
