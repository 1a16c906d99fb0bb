namespace QuantPeft.Quant.Checkpoints;

/// <summary>The bitsandbytes weight formats <c>qpeft quantize</c> writes.</summary>
public enum CheckpointFormat
{
    /// <summary>NF4 blockwise (QLoRA), bitsandbytes <c>Linear4bit</c> with <c>quant_type="nf4"</c>.</summary>
    Nf4,
    /// <summary>FP4 blockwise, bitsandbytes <c>Linear4bit</c> with <c>quant_type="fp4"</c>.</summary>
    Fp4,
    /// <summary>LLM.int8 row-wise absmax, bitsandbytes <c>Linear8bitLt</c> (<c>weight</c> int8 + <c>SCB</c>).</summary>
    Int8,
}

/// <summary>Parsing of the <c>--format</c> names.</summary>
public static class CheckpointFormats
{
    /// <summary>The accepted names, as the command line spells them.</summary>
    public static IReadOnlyList<string> Names { get; } = ["nf4", "fp4", "int8"];

    /// <summary>Parses <paramref name="name"/> (case-insensitive).</summary>
    /// <exception cref="QuantInputException">Unknown name; the message lists the accepted ones.</exception>
    public static CheckpointFormat Parse(string name) => name.ToLowerInvariant() switch
    {
        "nf4" => CheckpointFormat.Nf4,
        "fp4" => CheckpointFormat.Fp4,
        "int8" => CheckpointFormat.Int8,
        _ => throw new QuantInputException($"--format '{name}' is not a quantized format; expected one of {string.Join(", ", Names)}"),
    };
}
