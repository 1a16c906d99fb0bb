namespace QuantPeft.Memory.Presets;

/// <summary>
/// The Hugging Face Hub repository of each preset's base (pre-trained, not instruction-tuned) model, which a config
/// handed to another engine names as the model to load. Data, kept beside the presets' shapes. Phi-3 and Phi-4 were
/// published only instruction-tuned, so their rows name those repositories (the 4k-context Phi-3 releases, whose
/// window and context the presets carry).
/// </summary>
public static class PresetHubIds
{
    private static readonly Dictionary<string, string> Table = new(StringComparer.OrdinalIgnoreCase)
    {
        ["llama-2-7b"] = "meta-llama/Llama-2-7b-hf",
        ["llama-2-13b"] = "meta-llama/Llama-2-13b-hf",
        ["llama-2-70b"] = "meta-llama/Llama-2-70b-hf",
        ["llama-3-8b"] = "meta-llama/Meta-Llama-3-8B",
        ["llama-3.1-8b"] = "meta-llama/Llama-3.1-8B",
        ["llama-3.1-70b"] = "meta-llama/Llama-3.1-70B",
        ["llama-3.2-1b"] = "meta-llama/Llama-3.2-1B",
        ["llama-3.2-3b"] = "meta-llama/Llama-3.2-3B",
        ["mistral-7b"] = "mistralai/Mistral-7B-v0.1",
        ["mistral-nemo-12b"] = "mistralai/Mistral-Nemo-Base-2407",
        ["tinyllama-1.1b"] = "TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T",
        ["qwen2.5-0.5b"] = "Qwen/Qwen2.5-0.5B",
        ["qwen2.5-7b"] = "Qwen/Qwen2.5-7B",
        ["qwen2.5-14b"] = "Qwen/Qwen2.5-14B",
        ["qwen2.5-32b"] = "Qwen/Qwen2.5-32B",
        ["qwen2.5-72b"] = "Qwen/Qwen2.5-72B",
        ["qwen3-0.6b"] = "Qwen/Qwen3-0.6B-Base",
        ["qwen3-1.7b"] = "Qwen/Qwen3-1.7B-Base",
        ["qwen3-4b"] = "Qwen/Qwen3-4B-Base",
        ["qwen3-8b"] = "Qwen/Qwen3-8B-Base",
        ["qwen3-14b"] = "Qwen/Qwen3-14B-Base",
        ["qwen3-32b"] = "Qwen/Qwen3-32B",
        ["gemma-2-2b"] = "google/gemma-2-2b",
        ["gemma-2-9b"] = "google/gemma-2-9b",
        ["gemma-2-27b"] = "google/gemma-2-27b",
        ["gemma-3-1b"] = "google/gemma-3-1b-pt",
        ["gemma-3-4b"] = "google/gemma-3-4b-pt",
        ["gemma-3-12b"] = "google/gemma-3-12b-pt",
        ["gemma-3-27b"] = "google/gemma-3-27b-pt",
        ["phi-3-mini"] = "microsoft/Phi-3-mini-4k-instruct",
        ["phi-3-medium"] = "microsoft/Phi-3-medium-4k-instruct",
        ["phi-4"] = "microsoft/phi-4",
    };

    /// <summary>The Hub repository of preset <paramref name="name"/>, or null when none is recorded.</summary>
    public static string? Get(string name) => Table.GetValueOrDefault(name.Trim());
}
