"""Language models for the agent runtime: one interface, its adapters, and recorded inference.

    tools          the tool catalogue (JSON schemas) and validate_call, the gate for tool calls
    abi            one contract function from a signature or ABI fragment; argument checks
    model          LanguageModel (the interface), InferenceInput/Output, InferenceError
    prompt         versioned prompt templates (prompts/<name>@<n>.txt) rendered and hashed
    planner        LocalPlanner: the offline deterministic default (docs/planner.md)
    openai_adapter OpenAIModel: OpenAI or any OpenAI-compatible endpoint by base_url
    cache          exact-match inference cache in Redis; CachedModel
    attest         inference digest, Attestor (secp256k1 signature), verify_inference
    runner         infer(): model answer → signed InferenceCompleted fields
    canonical      canonical JSON and SHA-256 hashes

No Kafka here: the runtime records what these return.
"""
