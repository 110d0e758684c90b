"""Model backends: Ollama, embedded llama.cpp, any OpenAI-compatible server; one interface."""
