using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Model;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Model;

/// <summary>
/// The property packing rests on: each example of a packed row (segments kept apart) gets the loss it gets alone in a
/// padded row. Examples are random token sequences with random target masks, laid out by the data layer's own packer and
/// padder, at several packing densities; losses are compared example by example.
/// </summary>
public class PackedLossPropertyTests(ITestOutputHelper output)
{
    private const int T = 32;

    // Example lengths (tokens) drawn from [2, max]: short examples pack many to a row, long ones few (lower density).
    public static TheoryData<int> MaxLengths() => new() { 4, 9, 17, 33 };

    [Theory]
    [MemberData(nameof(MaxLengths))]
    public void PackedPerExampleLossesEqualPaddedInF32(int maxLength)
    {
        var spec = TinyModels.Llama();
        using var model = TinyModels.Build(spec, TinyModels.RandomCheckpoint(spec, 11));
        var examples = Examples(seed: maxLength, count: 24, maxLength);
        var (padded, packed, density) = Losses(model, examples);
        double delta = MaxDelta(padded, packed);
        // The control: the same packed rows with attention crossing examples and positions running on (the old stream
        // packing) give other losses, so the comparison can tell the two apart.
        double crossing = MaxDelta(padded, PerExample(model, Rows(examples, pack: true), pack: false));
        output.WriteLine($"f32 fused, max length {maxLength}: density {density:P1}, {padded.Count} examples, max |Δ| = {delta:E2} (attending across examples: {crossing:E2})");
        Assert.True(delta < 2e-5, $"max |Δ| {delta:E2}");
        Assert.True(crossing > 1e-3, $"attending across examples changed the losses by only {crossing:E2}");
    }

    [Theory]
    [MemberData(nameof(MaxLengths))]
    public void PackedPerExampleLossesEqualPaddedWithEagerAttentionAndAWindow(int maxLength)
    {
        // Mistral-style window of 5 (< T): the window term and the segment term compose in one mask.
        var spec = TinyModels.Llama() with { ModelType = "mistral", SlidingWindow = 5 };
        foreach (var attention in new[] { AttentionImplementation.Fused, AttentionImplementation.Eager })
        {
            using var model = TinyModels.Build(spec, TinyModels.RandomCheckpoint(spec, 12), attention: attention);
            var (padded, packed, density) = Losses(model, Examples(seed: 100 + maxLength, count: 20, maxLength));
            double delta = MaxDelta(padded, packed);
            output.WriteLine($"f32 {attention} window 5, max length {maxLength}: density {density:P1}, max |Δ| = {delta:E2}");
            Assert.True(delta < 2e-5, $"{attention}: max |Δ| {delta:E2}");
        }
    }

    [Theory]
    [MemberData(nameof(MaxLengths))]
    public void PackedPerExampleLossesEqualPaddedWithinBf16Noise(int maxLength)
    {
        // bf16 noise measured, not guessed: the same padded examples in bf16 against f32. Packing may differ from padding by
        // no more than that (a kernel with a mask adds and reduces in another order than the causal kernel).
        var spec = TinyModels.Llama();
        var checkpoint = TinyModels.RandomCheckpoint(spec, 13);
        var examples = Examples(seed: 200 + maxLength, count: 24, maxLength);
        using var f32 = TinyModels.Build(spec, checkpoint);
        using var bf16 = TinyModels.Build(spec, checkpoint, ScalarType.BFloat16);
        var (reference, _, _) = Losses(f32, examples);
        var (padded, packed, density) = Losses(bf16, examples);
        double noise = MaxDelta(reference, padded), delta = MaxDelta(padded, packed);
        output.WriteLine($"bf16 fused, max length {maxLength}: density {density:P1}, max |Δ| packed vs padded = {delta:E2}, bf16 vs f32 = {noise:E2}");
        Assert.True(noise > 0, "bf16 and f32 agree exactly: the model does not run in bf16");
        Assert.True(delta <= noise, $"packed vs padded {delta:E2} exceeds the bf16 noise {noise:E2}");
    }

    [Fact]
    public void GradientsOfAPackedBatchEqualPaddedWithCheckpointing()
    {
        // Checkpointing recomputes each block in backward; the recomputation must see the segments again.
        var spec = TinyModels.Llama();
        var checkpoint = TinyModels.RandomCheckpoint(spec, 14);
        var examples = Examples(seed: 5, count: 12, maxLength: 9);
        float[] Gradients(bool pack)
        {
            using var model = TinyModels.Build(spec, checkpoint);
            model.GradientCheckpointing = pack;
            foreach (var p in model.parameters()) p.requires_grad_(true);
            using (var scope = NewDisposeScope())
            {
                var batch = MicroBatch.FromRows(Rows(examples, pack));
                using var segments = pack ? Segments(batch) : null;
                var ids = tensor(batch.InputIds, [batch.BatchSize, T]);
                var labels = tensor(batch.Labels, [batch.BatchSize, T]);
                var logp = nn.functional.linear(model.Hidden(ids, segments), model.LmHeadWeight).log_softmax(-1);
                var mask = labels.ne(TrainingRow.IgnoreIndex);
                var picked = logp.gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1);
                picked.masked_select(mask).sum().neg().backward();
            }
            return [.. model.parameters().SelectMany(p => p.grad!.data<float>().ToArray())];
        }
        float[] padded = Gradients(pack: false), packed = Gradients(pack: true);
        double delta = padded.Zip(packed, (a, b) => Math.Abs(a - b)).Max();
        output.WriteLine($"gradients, f32, checkpointed packed vs padded: max |Δ| = {delta:E2} over {padded.Length} elements");
        Assert.True(delta < 1e-4, $"max |Δ| {delta:E2}");
        Assert.True(padded.Max(Math.Abs) > 1e-2);
    }

    internal static List<TokenizedExample> Examples(int seed, int count, int maxLength)
    {
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(i =>
        {
            int n = rng.Next(2, maxLength + 1);
            int[] tokens = [.. Enumerable.Range(0, n).Select(_ => rng.Next(0, 31))];
            bool[] target = [.. Enumerable.Range(0, n).Select(j => j > 0 && rng.NextDouble() < 0.7)];
            target[n - 1] = true;   // every example keeps a target
            return new TokenizedExample(tokens, target, i + 1);
        })];
    }

    private static List<TrainingRow> Rows(List<TokenizedExample> examples, bool pack) => pack
        ? SegmentPacker.Pack(examples, T, 31, TruncationPolicy.KeepStart, "examples").Rows
        : SequencePadder.Pad(examples, T, 31, TruncationPolicy.KeepStart, "examples").Rows;

    private static PackedSegments Segments(MicroBatch b) => PackedSegments.FromIds(b.SegmentIds!, b.PositionIds!, b.BatchSize, b.SequenceLength, CPU);

    // Per example, keyed by its input tokens: the mean loss over its targets.
    private static (Dictionary<string, double> Padded, Dictionary<string, double> Packed, double Density) Losses(CausalLm model, List<TokenizedExample> examples)
    {
        var padded = PerExample(model, Rows(examples, pack: false), pack: false);
        var packedRows = Rows(examples, pack: true);
        double density = packedRows.Sum(r => r.Length) / (double)(packedRows.Count * T);
        Assert.Contains(packedRows, r => r.Segments!.Length > 1);
        return (padded, PerExample(model, packedRows, pack: true), density);
    }

    private static Dictionary<string, double> PerExample(CausalLm model, List<TrainingRow> rows, bool pack)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var batch = MicroBatch.FromRows(rows);
        using var segments = pack ? Segments(batch) : null;
        var ids = tensor(batch.InputIds, [batch.BatchSize, T]);
        var hidden = model.Hidden(ids, segments);
        var logp = nn.functional.linear(hidden, model.LmHeadWeight).to_type(ScalarType.Float32).log_softmax(-1);   // (B, T, V)
        float[] lp = logp.data<float>().ToArray();
        long v = model.Spec.VocabSize;
        var result = new Dictionary<string, double>();
        for (int b = 0; b < rows.Count; b++)
        {
            int at = 0;
            foreach (int length in rows[b].Segments ?? [rows[b].Length])
            {
                double sum = 0;
                int n = 0;
                for (int t = at; t < at + length; t++)
                {
                    int label = rows[b].Labels[t];
                    if (label == TrainingRow.IgnoreIndex) continue;
                    sum -= lp[(b * T + t) * v + label];
                    n++;
                }
                string key = string.Join(',', rows[b].InputIds.Skip(at).Take(length)) + "|" + string.Join(',', rows[b].Labels.Skip(at).Take(length));
                result[key] = sum / n;
                at += length;
            }
        }
        return result;
    }

    private static double MaxDelta(Dictionary<string, double> a, Dictionary<string, double> b)
    {
        Assert.Equal(a.Count, b.Count);
        return a.Max(kv => Math.Abs(kv.Value - b[kv.Key]));
    }
}
