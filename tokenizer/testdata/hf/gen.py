# Random strings of added tokens (whole and broken), white space of many
# kinds (ASCII, Unicode White_Space, and look-alikes that are not: ZWSP,
# U+180E, BOM, U+001C) and a little text. Usage: python3 gen.py SEED COUNT
import json, random, sys

random.seed(int(sys.argv[1]))
specs = ["<|im_start|>", "<|im_end|>", "<|im_sep|>", "<|endoftext|>", "<|dummy_3|>", "<|user|>", "<|assistant|>", "<|end|>",
         "<|tool|>", "<|/tool|>", "<|tool_call|>", "<|system|>", "<|tag|>", "<|endofprompt|>", "<|im_start", "|>", "<|"]
ws = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2028", "\u0085", "\u200b", "\u2009", "\x0b", "\x0c", "\x1c", "\u180e", "\ufeff"]
txt = ["Hello", "world", "x", "123", "日本", "é", "'s", "!", "<", "|>", "a b"]
for _ in range(int(sys.argv[2])):
    parts = []
    for _ in range(random.randint(1, 12)):
        r = random.random()
        if r < 0.35:
            parts.append(random.choice(specs))
        elif r < 0.7:
            parts.append("".join(random.choice(ws) for _ in range(random.randint(1, 3))))
        else:
            parts.append(random.choice(txt))
    print(json.dumps("".join(parts)))
