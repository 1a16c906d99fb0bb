using System.Globalization;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Reports.Handoff;

/// <summary>
/// What every engine config takes from a sharded plan besides its memory knobs: the decoder layer class FSDP wraps, the
/// projection names, the LoRA scale, a learning rate, and the comment that records the prediction.
/// </summary>
public static class HandoffRecipe
{
    /// <summary>LoRA's alpha: 16, <c>qpeft train</c>'s default <c>--alpha</c> (and the QLoRA paper's).</summary>
    public const int LoraAlpha = 16;

    /// <summary>
    /// A starting learning rate: for LoRA the QLoRA paper's (Dettmers et al. 2023, appendix: 2e-4 up to 13B parameters,
    /// 1e-4 above), for full fine-tuning 1e-5. Memory does not depend on it; it is written so the config runs as is.
    /// </summary>
    public static double LearningRate(Strategy s, ModelSpec spec) =>
        !s.IsAdapterMethod ? 1e-5 : spec.ParameterCount > 20_000_000_000 ? 1e-4 : 2e-4;

    /// <summary>
    /// The Hugging Face decoder layer class of <paramref name="spec"/>'s family: FSDP's transformer wrapping policy makes
    /// one unit of each, as the plan prices.
    /// </summary>
    /// <exception cref="PlanningException">A family whose layer class is not known.</exception>
    public static string DecoderLayerClass(ModelSpec spec) => spec.ModelType switch
    {
        "llama" => "LlamaDecoderLayer",
        "mistral" => "MistralDecoderLayer",
        "qwen2" => "Qwen2DecoderLayer",
        "qwen3" => "Qwen3DecoderLayer",
        "gemma" => "GemmaDecoderLayer",
        "gemma2" => "Gemma2DecoderLayer",
        "gemma3_text" or "gemma3" => "Gemma3DecoderLayer",
        "phi3" => "Phi3DecoderLayer",
        _ => throw new PlanningException($"MODEL: model_type '{spec.ModelType}' has no known Hugging Face decoder layer class to wrap with FSDP"),
    };

    /// <summary>Hugging Face module names of the adapter's targets, in projection order.</summary>
    public static IReadOnlyList<string> TargetModuleNames(TargetModules targets) =>
        Enum.GetValues<LinearModule>().Where(m => targets.Contains(m)).Select(m => m switch
        {
            LinearModule.Q => "q_proj", LinearModule.K => "k_proj", LinearModule.V => "v_proj", LinearModule.O => "o_proj",
            LinearModule.Gate => "gate_proj", LinearModule.Up => "up_proj", _ => "down_proj",
        }).ToList();

    /// <summary>Comment lines recording what the config reproduces and what it is predicted to take per GPU.</summary>
    public static IReadOnlyList<string> Header(ShardedPlan plan, ShardedCandidate c, HandoffEngine engine)
    {
        ShardedEstimate e = c.Estimate;
        var lines = new List<string>
        {
            $"{engine.Name()} config for {plan.Model} on {plan.Gpus} GPUs (FSDP full shard), from `qpeft plan`.",
            $"Plan: {c.Describe()}; seq {plan.Workload.Seq}, grad-accum {plan.Workload.GradAccum}.",
            string.Create(CultureInfo.InvariantCulture, $"Predicted per GPU: peak {ByteSize.Format(e.PeakBytes)} ({e.PeakPhase}), allocated {ByteSize.Format(e.AllocatedBytes)}") +
                (plan.Budget.Vram is { } v ? $", budget {ByteSize.Format(v)}" : "") + (e.HostBytes > 0 ? $"; host {ByteSize.Format(e.HostBytes)} for all ranks." : "."),
        };
        lines.Add("Per GPU: " + string.Join(", ", ShardedComponents.DeviceOrder.Where(k => e.Device[k] > 0)
            .Select(k => $"{k.JsonName()} {ByteSize.Format(e.Device[k])}")) + ".");
        return lines;
    }
}
