// Usage: node enc.js IN.jsonl OUT.jsonl TOKENIZER.json...
// Encodes each JSON string of IN with each tokenizer.json (HF tokenizers, the
// Rust library's Node binding) and writes {"text", "ids": [[...], ...]}.
const { Tokenizer } = require("tokenizers");
const fs = require("fs");
(async () => {
  const [inPath, outPath, ...files] = process.argv.slice(2);
  const toks = files.map((f) => Tokenizer.fromFile(f));
  const out = [];
  for (const line of fs.readFileSync(inPath, "utf8").split("\n").filter(Boolean)) {
    const text = JSON.parse(line);
    const ids = [];
    for (const t of toks) ids.push(Array.from((await t.encode(text)).getIds()));
    out.push(JSON.stringify({ text, ids }));
  }
  fs.writeFileSync(outPath, out.join("\n") + "\n");
})();
