import random, json, sys
random.seed(int(sys.argv[1]))
pools = [
 "abcxyzABCXYZ", "'", "'", "sStTdDmMrReEvVlL", "ſ", "0123456789", "٣४〇Ⅻ²", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\u00a0", "\u3000", "\u2028", "\u0085", "\u200b",
 "ǅǈǋ", "ʰʱˠ", "日本語中文", "한국어", "שלום", "مرحبا", "हिन्दी", "\u0301\u0308\u0903\u20dd", "ÀÉÎõüß", "ΑΒΓαβγ", "АБВабв",
 "!?.,;:-_/\\|@#$%^&*()[]{}<>\"`~+=", "/", "😀👋🏽🇫🇷", "\U00010D4A\U00010D40\U00011380\U0001CCF0", "ẞ", "İı", "K", "\x00\x01\x7f", "<|im_end|>", "ａｂｃ",
]
out = []
for i in range(int(sys.argv[2])):
    n = random.randint(1, int(sys.argv[3]) if len(sys.argv) > 3 else 30)
    s = "".join(random.choice(random.choice(pools)) if random.random() < 0.8 else random.choice(pools) for _ in range(n))
    out.append(s)
for s in out: print(json.dumps(s))
