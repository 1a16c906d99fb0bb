namespace QuantPeft.Formats.Peft;

/// <summary>
/// A PEFT field that is either a list of names or a single string: <c>target_modules</c> and
/// <c>exclude_modules</c> (a string is a regex matched against the full module name) and
/// <c>layers_pattern</c> (a string is one layer-container name).
/// </summary>
public sealed record PeftModuleSelector
{
    private PeftModuleSelector(IReadOnlyList<string>? names, string? pattern)
    {
        Names = names;
        Pattern = pattern;
    }

    /// <summary>The list form (module-name suffixes), or null when the field is a single string.</summary>
    public IReadOnlyList<string>? Names { get; }

    /// <summary>The single-string form, or null when the field is a list.</summary>
    public string? Pattern { get; }

    /// <summary>The list form.</summary>
    public static PeftModuleSelector FromNames(params IEnumerable<string> names) => new([.. names], null);

    /// <summary>The single-string form.</summary>
    public static PeftModuleSelector FromPattern(string pattern) => new(null, pattern ?? throw new ArgumentNullException(nameof(pattern)));

    /// <summary>Value equality over the list contents.</summary>
    public bool Equals(PeftModuleSelector? other) => other is not null && Pattern == other.Pattern
        && (Names is null ? other.Names is null : other.Names is not null && Names.SequenceEqual(other.Names));

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Pattern, Names?.Count);

    /// <inheritdoc/>
    public override string ToString() => Pattern ?? "[" + string.Join(", ", Names!) + "]";
}

/// <summary>
/// PEFT's <c>init_lora_weights</c>: <c>true</c> (kaiming-uniform A, zero B), <c>false</c> (random
/// B, for tests), or a method name such as <c>"gaussian"</c>, <c>"pissa"</c>, <c>"pissa_niter_16"</c>,
/// <c>"olora"</c>, <c>"loftq"</c>, <c>"eva"</c>, <c>"corda"</c>, <c>"orthogonal"</c>.
/// </summary>
public sealed record PeftInitLoraWeights
{
    private PeftInitLoraWeights(bool? flag, string? method)
    {
        Flag = flag;
        Method = method;
    }

    /// <summary>The boolean form, or null when a method is named.</summary>
    public bool? Flag { get; }

    /// <summary>The method-name form, or null for the boolean form.</summary>
    public string? Method { get; }

    /// <summary>PEFT's default, <c>true</c>.</summary>
    public static PeftInitLoraWeights Default { get; } = new(true, null);

    /// <summary>The boolean form.</summary>
    public static PeftInitLoraWeights FromFlag(bool flag) => new(flag, null);

    /// <summary>A named method.</summary>
    public static PeftInitLoraWeights FromMethod(string method) => new(null, method ?? throw new ArgumentNullException(nameof(method)));

    /// <inheritdoc/>
    public override string ToString() => Method ?? (Flag == true ? "true" : "false");
}
