package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// cliBatch is how many JSONL lines are encoded together with EncodeBatch.
const cliBatch = 512

// WriteIDs implements `phi4mac tokenize`. Plain mode reads all of r as one
// text and writes one JSON array of ids and a newline. With jsonl, each line
// of r is a JSON string and each gets a JSON array of ids on its own line,
// in order; blank lines are skipped.
func WriteIDs(t *Tokenizer, r io.Reader, w io.Writer, opts EncodeOptions, jsonl bool) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	if !jsonl {
		data, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("read input: %w", err)
		}
		bw.Write(appendIDs(nil, t.Encode(string(data), opts)))
		return bw.Flush()
	}
	br := bufio.NewReaderSize(r, 1<<16)
	var texts []string
	var buf []byte
	flush := func() error {
		for _, ids := range t.EncodeBatch(texts, opts) {
			buf = appendIDs(buf[:0], ids)
			if _, err := bw.Write(buf); err != nil {
				return err
			}
		}
		texts = texts[:0]
		return nil
	}
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var s string
			if jerr := json.Unmarshal(line, &s); jerr != nil {
				return fmt.Errorf("input line %d: want a JSON string: %w", lineNo, jerr)
			}
			texts = append(texts, s)
			if len(texts) == cliBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read input: %w", err)
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// appendIDs appends ids as a JSON array and a newline.
func appendIDs(b []byte, ids []int) []byte {
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(id), 10)
	}
	return append(b, ']', '\n')
}

// WriteText implements `phi4mac detokenize`. Plain mode reads one JSON array
// of ids from r and writes the decoded text as is (no newline added). With
// jsonl, each line of r is a JSON array of ids and each gets its text as a
// JSON string on its own line; blank lines are skipped. Ids outside the
// vocabulary are an error.
func WriteText(t *Tokenizer, r io.Reader, w io.Writer, jsonl bool) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	parse := func(data []byte, where string) ([]int, error) {
		var ids []int
		if err := json.Unmarshal(data, &ids); err != nil {
			return nil, fmt.Errorf("%s: want a JSON array of token ids: %w", where, err)
		}
		for _, id := range ids {
			if id < 0 || id >= t.VocabSize() {
				return nil, fmt.Errorf("%s: token id %d is outside the vocabulary [0, %d)", where, id, t.VocabSize())
			}
		}
		return ids, nil
	}
	if !jsonl {
		data, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("read input: %w", err)
		}
		ids, err := parse(data, "input")
		if err != nil {
			return err
		}
		bw.WriteString(t.Decode(ids))
		return bw.Flush()
	}
	br := bufio.NewReaderSize(r, 1<<16)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			ids, perr := parse(line, fmt.Sprintf("input line %d", lineNo))
			if perr != nil {
				return perr
			}
			out, merr := json.Marshal(t.Decode(ids))
			if merr != nil {
				return merr
			}
			bw.Write(out)
			bw.WriteByte('\n')
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read input: %w", err)
		}
	}
	return bw.Flush()
}
