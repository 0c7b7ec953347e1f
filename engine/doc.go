// Package engine loads Phi-4-family (Phi3ForCausalLM) and Llama models from
// GGUF files or Hugging Face folders and generates tokens with them.
//
// The forward pass is written once, here, against the Backend interface; the
// CPU backend lives in engine/cpu and a Metal backend in engine/gpu. A Model
// holds the weights, a Session holds one conversation's KV cache and reuses
// the longest common prefix of consecutive prompts.
package engine
