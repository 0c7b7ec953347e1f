import { get_encoding } from "tiktoken";
import fs from "fs";
const cl = get_encoding("cl100k_base"), o2 = get_encoding("o200k_base");
const lines = fs.readFileSync(process.argv[2], "utf8").split("\n").filter(Boolean);
const out = [];
for (const l of lines) {
  const s = JSON.parse(l);
  out.push(JSON.stringify({text: s, cl100k: Array.from(cl.encode_ordinary(s)), o200k: Array.from(o2.encode_ordinary(s))}));
}
fs.writeFileSync(process.argv[3], out.join("\n") + "\n");
