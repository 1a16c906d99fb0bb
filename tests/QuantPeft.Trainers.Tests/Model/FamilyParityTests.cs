using System.Text.Json;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Loss;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Model;

/// <summary>
/// Each family's tiny random model folder (Model/Families, written by make_families.py) against the logits and loss that
/// script computed with its own float64 numpy forward pass.
/// </summary>
public class FamilyParityTests
{
    internal static string Folder(string family) => Path.Combine(AppContext.BaseDirectory, "Model", "Families", family);

    public static TheoryData<string, AttentionImplementation> Cases()
    {
        var data = new TheoryData<string, AttentionImplementation>();
        foreach (string f in (string[])["mistral-window", "qwen3", "llama-3.2", "gemma2", "gemma3", "phi3", "phi3-long"])
            foreach (var a in (AttentionImplementation[])[AttentionImplementation.Fused, AttentionImplementation.Eager])
                data.Add(f, a);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void LogitsAndLoss_MatchTheIndependentReference(string family, AttentionImplementation attention)
    {
        var expected = Expected.Read(family);
        var spec = ModelConfigReader.Read(Folder(family));
        using var model = Load(spec, attention, family);
        using var ids = Ids(expected.Ids);
        using var logits = model.call(ids);
        var actual = logits.data<float>().ToArray();
        double maxDiff = 0;
        for (int i = 0; i < actual.Length; i++)
            maxDiff = Math.Max(maxDiff, Math.Abs(actual[i] - expected.Logits[i]));
        Assert.True(maxDiff < 2e-4, $"{family}: max |model − reference| = {maxDiff}");

        using var hidden = model.Hidden(ids);
        using var labels = ChunkedCrossEntropy.ShiftLabels(ids);
        using var loss = ChunkedCrossEntropy.Compute(hidden, model.LmHeadWeight, labels, chunkSize: 7,
            finalLogitSoftcap: spec.FinalLogitSoftcap);
        Assert.Equal(expected.Loss, loss.item<float>(), 4);
    }

    [Theory]
    [InlineData("mistral-window")]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    [InlineData("phi3-long")]
    public void TheWindowMatters_FullCausalAttentionGivesOtherLogits(string family)
    {
        // Guards the parity test: if the window were ignored, the comparison above would have to fail.
        var expected = Expected.Read(family);
        var spec = ModelConfigReader.Read(Folder(family)) with { SlidingWindow = null, GlobalLayerEvery = 0 };
        using var model = Load(spec, AttentionImplementation.Fused, family);
        using var ids = Ids(expected.Ids);
        using var logits = model.call(ids);
        var actual = logits.data<float>().ToArray();
        double maxDiff = actual.Select((v, i) => Math.Abs(v - expected.Logits[i])).Max();
        Assert.True(maxDiff > 1e-3, $"{family}: without the window the logits differ by only {maxDiff}");
    }

    [Theory]
    [InlineData("phi3", false)]
    [InlineData("phi3-long", true)]
    public void Longrope_TheFactorsThatApplyMatter(string family, bool longContext)
    {
        // Guards the parity test for longrope: the other factor list, or no cos/sin scale, gives other logits.
        var expected = Expected.Read(family);
        var spec = ModelConfigReader.Read(Folder(family));
        var rope = spec.RopeScaling!;
        var swapped = rope with { ShortFactor = rope.LongFactor, LongFactor = rope.ShortFactor };
        var unscaled = rope with { AttentionFactor = 1.0 };
        foreach (var variant in (RopeScaling[])[swapped, unscaled])
        {
            using var model = Load(spec with { RopeScaling = variant }, AttentionImplementation.Fused, family);
            using var ids = Ids(expected.Ids);
            using var logits = model.call(ids);
            var actual = logits.data<float>().ToArray();
            double maxDiff = actual.Select((v, i) => Math.Abs(v - expected.Logits[i])).Max();
            Assert.True(maxDiff > 1e-3, $"{family} (long context: {longContext}): a changed longrope gives logits within {maxDiff}");
        }
    }

    internal static CausalLm Load(ModelSpec spec, AttentionImplementation attention, string? family = null)
    {
        var model = new CausalLm(spec, new DecoderOptions { ComputeDType = ScalarType.Float32, Attention = attention });
        using var source = new SafetensorsModelSource(Path.Combine(Folder(family ?? FamilyOf(spec)), "model.safetensors"));
        model.LoadWeights(source);
        return model;
    }

    private static string FamilyOf(ModelSpec spec) => spec.ModelType switch
    {
        "mistral" => "mistral-window",
        "llama" => "llama-3.2",
        "gemma3_text" => "gemma3",
        _ => spec.ModelType,
    };

    internal static Tensor Ids(long[][] rows) =>
        tensor(rows.SelectMany(r => r).ToArray(), [rows.Length, rows[0].Length], dtype: ScalarType.Int64);

    internal sealed record Expected(long[][] Ids, float[] Logits, double Loss)
    {
        public static Expected Read(string family)
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(family), "expected.json")));
            var root = doc.RootElement;
            var ids = root.GetProperty("ids").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt64()).ToArray()).ToArray();
            var logits = root.GetProperty("logits").EnumerateArray()
                .SelectMany(b => b.EnumerateArray().SelectMany(t => t.EnumerateArray().Select(v => (float)v.GetDouble()))).ToArray();
            return new Expected(ids, logits, root.GetProperty("loss").GetDouble());
        }
    }
}
