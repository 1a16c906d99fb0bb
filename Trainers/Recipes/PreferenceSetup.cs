using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Tokenizers;
using QuantPeft.Trainers.Adapters.Methods;

namespace QuantPeft.Trainers.Recipes;

/// <summary>What a preference run needs from its options before training: its pairs, and whether the model with its adapters off is where it starts.</summary>
public static class PreferenceSetup
{
    /// <summary>Reads and encodes the pairs of <see cref="FinetuneOptions.DataPath"/> (and the eval file), rendered through the run's chat template.</summary>
    /// <exception cref="DatasetFormatException">A bad line or a pair that does not fit <c>--seq</c>; names the file and line.</exception>
    public static PreferenceDataset Load(FinetuneOptions options, ITextTokenizer tokenizer, ChatTemplate template) =>
        PreferenceDataset.Load(options.DataPath, options.EvalPath, tokenizer, template,
            options.SequenceLength, options.EvalPath is null ? options.EvalFraction : 0, options.Seed);

    /// <summary>
    /// Whether every adapter's update starts at exactly zero, so that the model with its adapters off is the model
    /// the run starts from: LoRA (B = 0), DoRA (B = 0 and m = ‖W‖), VeRA (λ_b = 0) and LoRAM on a plain base. PiSSA
    /// and OSoRA move the principal part of W into the adapter, LQ-LoRA starts the LoRA at L1·L2, and full-parameter
    /// methods have no adapters: their reference is cached instead.
    /// </summary>
    public static bool AdapterOffIsStart(FinetuneOptions options) =>
        AdapterRegistry.Has(options.Method) && AdapterRegistry.Of(options.Method).UpdateStartsAtZero
        && options.Weights != WeightFormat.LqLora;
}
