# Long runs of one unit (the worst cases for merging: one long piece that
# takes the heap path above 48 bytes and the rank-by-rank path above 4096),
# bare, between letters, and between spaces and a newline. Usage: python3 runs.py
import json

units = ["a", "A", "1", " ", "\n", "\r\n", "!", "\u3000", "日", "😀", "\u0301", "e\u0301", "ab ", "1 ", " \n",
         "'s", "\u00a0", "/", "ﬁ", "👨‍👩‍👧‍👦", "x\u200d", "\x00", "٣", "xq", "Zy"]
for u in units:
    for n in [1, 2, 3, 4, 5, 7, 49, 100, 1500, 5000]:
        for s in [u * n, "x" + u * n + "y", " " + u * n + " \n"]:
            print(json.dumps(s))
