package engine

// SetAvailableMemory replaces the memory figure s's Forward checks
// all-position logits against, so tests can exercise the check without
// allocating gigabytes.
func SetAvailableMemory(s *Session, f func() (int64, bool)) { s.availMem = f }
