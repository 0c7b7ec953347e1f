// Package e2e holds end-to-end tests of the API server driven by the
// official OpenAI and Ollama Go clients, against a fake model and against
// the real engine with the micro reference model. It has no non-test code;
// keeping these tests apart keeps the api package's fuzz binary small.
package e2e
