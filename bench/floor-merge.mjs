// The floor under `k8sdiag merge`: the same file read as a stream, cut into lines, each line JSON.parse'd, nothing
// kept. What any merge in Node pays before it adds a single number.
import { createReadStream } from 'node:fs';

let tail = '';
let docs = 0;
const decoder = new TextDecoder('utf-8');
for await (const chunk of createReadStream(process.argv[2], { highWaterMark: 1 << 20 })) {
  const text = tail + decoder.decode(chunk, { stream: true });
  let from = 0;
  for (let eol = text.indexOf('\n'); eol >= 0; eol = text.indexOf('\n', from)) {
    if (eol > from) {
      JSON.parse(text.slice(from, eol));
      docs++;
    }
    from = eol + 1;
  }
  tail = text.slice(from);
}
if (tail.trim() !== '') docs++;
process.stdout.write(`${docs}\n`);
