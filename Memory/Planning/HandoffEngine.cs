namespace QuantPeft.Memory.Planning;

/// <summary>A multi-GPU engine that a sharded plan is handed to.</summary>
public enum HandoffEngine
{
    /// <summary>axolotl: one YAML holds the model, adapter, training and FSDP settings.</summary>
    Axolotl,
    /// <summary>Hugging Face accelerate launching a Trainer: an FSDP config YAML plus the training arguments.</summary>
    Accelerate,
}

/// <summary>Command-line names of <see cref="HandoffEngine"/>.</summary>
public static class HandoffEngines
{
    /// <summary>The engine's <c>--engine</c> name.</summary>
    public static string Name(this HandoffEngine engine) => engine switch
    {
        HandoffEngine.Axolotl => "axolotl",
        _ => "accelerate",
    };

    /// <summary>Parses <c>--engine</c>.</summary>
    /// <exception cref="PlanningException">Neither <c>axolotl</c> nor <c>accelerate</c>.</exception>
    public static HandoffEngine Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "axolotl" => HandoffEngine.Axolotl,
        "accelerate" => HandoffEngine.Accelerate,
        _ => throw new PlanningException($"--engine: expected axolotl or accelerate; found '{text}'"),
    };
}
