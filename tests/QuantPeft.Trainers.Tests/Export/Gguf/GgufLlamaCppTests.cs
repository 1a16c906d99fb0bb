using System.Text;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Data.Demo;
using QuantPeft.Trainers.Export.Gguf;
using QuantPeft.Trainers.Generation;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tests.Recipes;
using QuantPeft.Trainers.Tokenizers;
using QuantPeft.Trainers.Training;
using QuantPeft.Memory.Planning;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Export.Gguf;

/// <summary>
/// GGUF files QuantPeft writes, read by llama.cpp itself: its token ids equal QuantPeft's, its per-token log-probabilities
/// agree with QuantPeft's float32 forward of the same weights, and its greedy continuation is QuantPeft's.
/// </summary>
[Collection(nameof(LlamaCpp))]
public class GgufLlamaCppTests(ITestOutputHelper output)
{
    /// <summary>QuantPeft's log p(ids[t+1] | ids[..t]) from a float32 forward of the model folder.</summary>
    internal static double[] QuantPeftLogProbs(string folder, int[] ids)
    {
        using var model = ModelFolder.Load(folder, ModelFolder.ReadSpec(folder), new DecoderOptions { ComputeDType = ScalarType.Float32 });
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var input = tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]);
        var logp = model.forward(input).to(ScalarType.Float64).log_softmax(-1)[0];   // (T, V)
        var next = tensor(ids.Skip(1).Select(i => (long)i).ToArray());
        var picked = logp.narrow(0, 0, ids.Length - 1).gather(1, next.unsqueeze(1)).squeeze(1);
        return picked.data<double>().ToArray();
    }

    private static double MeanAbsDiff(double[] a, double[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Average();

    private static double Perplexity(double[] logProbs) => Math.Exp(-logProbs.Average());

    public static TheoryData<string> TokenizerKinds => ["gpt2-bpe", "llama3-bpe", "sentencepiece", "byte-level"];

    [Theory]
    [MemberData(nameof(TokenizerKinds))]
    public void LlamaCppTokenIdsEqualQuantPeftsOnTheMultilingualText(string kind)
    {
        using var dir = new TempDir();
        string folder = dir.File("model");
        switch (kind)
        {
            case "gpt2-bpe":
            case "llama3-bpe":
                string json = GgufFixtures.BpeTokenizerJson(120, kind == "gpt2-bpe" ? null : GgufFixtures.Llama3Split);
                GgufFixtures.WriteModel(GgufFixtures.Spec("llama", 64, 128, 4, 2, GgufFixtures.VocabSizeOf(json)), folder, GgufFixtures.BpeFiles(json));
                break;
            case "sentencepiece":
                var sp = GgufFixtures.SentencePieceModel();
                int vocab = SentencePieceModelFile.Read(WriteTemp(dir, sp)).Pieces.Count;
                GgufFixtures.WriteModel(GgufFixtures.Spec("llama", 64, 128, 4, 2, vocab), folder, GgufFixtures.SentencePieceFiles());
                break;
            default:
                folder = RecipeTests.DemoModelFolder();
                break;
        }
        string gguf = dir.File("model.gguf");
        GgufExport.Write(folder, null, GgufQuantType.F16, gguf);
        var tokenizer = ModelFolder.ReadTokenizer(folder);
        int[] expected = [tokenizer.BosId!.Value, .. tokenizer.Encode(GgufFixtures.Multilingual)];

        using var llama = LlamaCppModel.Load(gguf, 512);
        int[] actual = llama.Tokenize(GgufFixtures.Multilingual);
        output.WriteLine($"{kind}: {expected.Length} tokens; llama.cpp {actual.Length}");
        Assert.True(expected.Length < Encoding.UTF8.GetByteCount(GgufFixtures.Multilingual) || kind == "byte-level", "the tokenizer merged nothing");
        Assert.Equal(expected, actual);
    }

    private static string WriteTemp(TempDir dir, byte[] bytes)
    {
        string path = dir.File("probe.model");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    // A tiny llama trained with LoRA for 8 steps on the upper-casing task, the adapter merged by the export.
    private static (string Model, string Adapter, string Merged) TrainedTinyModel(TempDir dir)
    {
        string model = RecipeTests.WriteTinyModel(dir);
        var options = RecipeTests.Options(dir, model, steps: 8, trainRecords: 16) with
        {
            Method = TrainingMethod.Lora, Weights = WeightFormat.Bf16, Rank = 4, Alpha = 8, LearningRate = 5e-2,
        };
        string adapter = dir.File("adapter"), merged = dir.File("merged");
        using (var recipe = new FinetuneRecipe(options))
        {
            recipe.Setup();
            using (var log = new MetricsWriter(dir.File("metrics.jsonl"))) recipe.Train(log);
            recipe.Save(adapter);
        }
        MergedModelExport.Merge(adapter, model, merged, maxShardBytes: 1L << 30);
        return (model, adapter, merged);
    }

    // BOS + the text's first 62 UTF-8 bytes: the tiny model's 64 positions.
    private static int[] ByteIds(int count) => [ByteLevelTokenizer.Bos, .. Encoding.UTF8.GetBytes(GgufFixtures.Multilingual).Take(count - 1).Select(b => (int)b)];

    [Fact]
    public void MergedTinyLlamaLogProbsAgreeWithLlamaCppPerQuantType()
    {
        using var dir = new TempDir();
        var (model, adapter, merged) = TrainedTinyModel(dir);
        int[] ids = ByteIds(63);
        double[] reference = QuantPeftLogProbs(merged, ids);
        double[] baseOnly = QuantPeftLogProbs(model, ids);
        double adapterEffect = MeanAbsDiff(reference, baseOnly);

        var bounds = new (GgufQuantType Quant, double Bound)[] { (GgufQuantType.F16, 0.01), (GgufQuantType.BF16, 0.01), (GgufQuantType.Q8_0, 0.05), (GgufQuantType.Q4_0, double.NaN) };
        var deltas = new Dictionary<GgufQuantType, double>();
        foreach (var (quant, _) in bounds)
        {
            string gguf = dir.File($"tiny-{GgufQuantTypes.Name(quant)}.gguf");
            var result = GgufExport.Write(model, adapter, quant, gguf);
            Assert.Equal(2 * 7, result.MergedModules);
            using var llama = LlamaCppModel.Load(gguf);
            double[] actual = llama.LogProbs(ids);
            deltas[quant] = MeanAbsDiff(actual, reference);
            output.WriteLine($"llama tiny (hidden 32, trained LoRA merged) {GgufQuantTypes.Name(quant)}: mean |Δ log p| {deltas[quant]:F5}, " +
                $"ppl llama.cpp {Perplexity(actual):F4} vs QuantPeft {Perplexity(reference):F4}; {result.Bytes} bytes");
        }
        output.WriteLine($"adapter effect (merged vs base, QuantPeft): mean |Δ log p| {adapterEffect:F4}");
        // The adapter must move the log-probs far more than the tolerance, or a GGUF of the unmerged base would also pass.
        Assert.True(adapterEffect > 10 * 0.05, $"training moved log p by only {adapterEffect}");
        foreach (var (quant, bound) in bounds)
            if (!double.IsNaN(bound)) Assert.True(deltas[quant] <= bound, $"{quant}: mean |Δ log p| {deltas[quant]} > {bound}");
        // Q4_0 has no bound of its own; it must at least be worse than Q8_0 and far better than no adapter.
        Assert.True(deltas[GgufQuantType.Q4_0] < adapterEffect / 2, $"q4_0: mean |Δ log p| {deltas[GgufQuantType.Q4_0]}");
    }

    public static TheoryData<string> Families => ["llama", "qwen2", "llama-3.2", "qwen3", "gemma2", "gemma3", "mistral-window"];

    [Theory]
    [MemberData(nameof(Families))]
    public void RandomModelsOfEachFamilyAgreeWithLlamaCppAndKQuantsKeepThePerplexity(string family)
    {
        using var dir = new TempDir();
        string json = GgufFixtures.BpeTokenizerJson(120, family.StartsWith("llama", StringComparison.Ordinal) ? GgufFixtures.Llama3Split : null);
        // Rows of 256 so the k-quants are used as such (llama.cpp falls back to legacy types for other widths).
        var spec = GgufFixtures.FamilySpec(family, GgufFixtures.VocabSizeOf(json));
        string folder = GgufFixtures.WriteModel(spec, dir.File("model"), GgufFixtures.BpeFiles(json));
        var tokenizer = ModelFolder.ReadTokenizer(folder);
        int[] ids = [tokenizer.BosId!.Value, .. tokenizer.Encode(GgufFixtures.Multilingual)];
        bool windowed = spec.SlidingWindow is not null, gemma = spec.GemmaStyle;
        if (windowed) Assert.True(ids.Length > (gemma ? 2 : 1) * spec.SlidingWindow!.Value, "the text must reach past the window");
        // llama.cpp's llama architecture has no sliding window, so a windowed Mistral declares its window as the training
        // context and is compared within it; Gemma's windows are llama.cpp's own and are compared on the whole text.
        if (windowed && !gemma) ids = ids[..spec.SlidingWindow!.Value];
        double[] reference = QuantPeftLogProbs(folder, ids);
        output.WriteLine($"{family}: {ids.Length} tokens compared");

        var ppl = new Dictionary<GgufQuantType, double>();
        foreach (var quant in Enum.GetValues<GgufQuantType>())
        {
            string gguf = dir.File($"{family}-{GgufQuantTypes.Name(quant)}.gguf");
            var result = GgufExport.Write(folder, null, quant, gguf);
            using var llama = LlamaCppModel.Load(gguf, 256);
            Assert.Equal(ids, llama.Tokenize(GgufFixtures.Multilingual)[..ids.Length]);
            if (windowed && !gemma) Assert.Equal($"{spec.SlidingWindow}", llama.Metadata["llama.context_length"]);
            double[] actual = llama.LogProbs(ids);
            double delta = MeanAbsDiff(actual, reference);
            ppl[quant] = Perplexity(actual);
            output.WriteLine($"{family} (hidden 256, random) {GgufQuantTypes.Name(quant)}: mean |Δ log p| {delta:F5}, ppl {ppl[quant]:F3} (QuantPeft f32 {Perplexity(reference):F3}), {result.Bytes} bytes");
            if (quant is GgufQuantType.F16 or GgufQuantType.BF16) Assert.True(delta <= 0.01, $"{quant}: mean |Δ log p| {delta}");
            if (quant is GgufQuantType.Q8_0) Assert.True(delta <= 0.05, $"{quant}: mean |Δ log p| {delta}");
        }
        foreach (var quant in new[] { GgufQuantType.Q4_K_M, GgufQuantType.Q5_K_M, GgufQuantType.Q6_K })
            Assert.True(Math.Abs(ppl[quant] / ppl[GgufQuantType.F16] - 1) <= 0.05, $"{quant}: perplexity {ppl[quant]} vs f16 {ppl[GgufQuantType.F16]}");
    }

    [Theory]
    // Original context 512 above llama.cpp's 256: the short factors in both; 16 below it (and below the text's length): the
    // long ones in both; a window of at least the context (Phi-3-mini-128k's 262,144 over 131,072) changes nothing.
    [InlineData(512, null)]
    [InlineData(16, null)]
    [InlineData(16, 2048)]
    public void Phi3WithPartialRotaryAndLongropeAgreesWithLlamaCpp(int originalContext, int? window)
    {
        using var dir = new TempDir();
        string json = GgufFixtures.BpeTokenizerJson(120, null);
        // head_dim 64 with 3/4 rotated: 48 dims, 24 factors per list.
        var spec = GgufFixtures.Spec("phi3", 256, 512, 4, 2, GgufFixtures.VocabSizeOf(json)) with
        {
            RmsNormEps = 1e-5, PartialRotaryFactor = 0.75, MaxPositionEmbeddings = 1024, SlidingWindow = window,
            RopeScaling = new RopeScaling("longrope", 1024.0 / originalContext, OriginalMaxPositionEmbeddings: originalContext)
            {
                ShortFactor = Enumerable.Range(0, 24).Select(i => 1.0 + 0.1 * i).ToArray(),
                LongFactor = Enumerable.Range(0, 24).Select(i => 1.0 + 2.0 * i).ToArray(),
            },
        };
        string folder = GgufFixtures.WriteModel(spec, dir.File("model"), GgufFixtures.BpeFiles(json));
        var tokenizer = ModelFolder.ReadTokenizer(folder);
        int[] ids = [tokenizer.BosId!.Value, .. tokenizer.Encode(GgufFixtures.Multilingual)];
        Assert.True(ids.Length > 32, $"{ids.Length} tokens");
        double[] reference = QuantPeftLogProbs(folder, ids);
        string gguf = dir.File("phi3-f16.gguf");
        GgufExport.Write(folder, null, GgufQuantType.F16, gguf);
        using var llama = LlamaCppModel.Load(gguf, 256);
        Assert.Equal(ids, llama.Tokenize(GgufFixtures.Multilingual));
        double delta = MeanAbsDiff(llama.LogProbs(ids), reference);
        output.WriteLine($"phi3 (original context {originalContext}, window {window}): {ids.Length} tokens, mean |Δ log p| {delta:F5}");
        Assert.True(delta <= 0.01, $"mean |Δ log p| {delta}");
    }

    [Fact]
    public void Phi3TrainedLora_AsGgufLoraAndMerged_GivesQuantPeftsLogProbsInLlamaCpp()
    {
        // A tiny Phi-3 (half of each head rotated, longrope in its long regime: 63 tokens over an original 16) trained with
        // LoRA on its fused projections; llama.cpp runs the adapter file on the base and the merged GGUF.
        using var dir = new TempDir();
        var spec = new ModelSpec
        {
            ModelType = "phi3", NumLayers = 2, HiddenSize = 32, IntermediateSize = 64, NumHeads = 2, NumKvHeads = 1,
            VocabSize = ByteLevelTokenizer.Size, TieWordEmbeddings = true, MaxPositionEmbeddings = 64, RmsNormEps = 1e-5,
            PartialRotaryFactor = 0.5,
            RopeScaling = new RopeScaling("longrope", 4.0, OriginalMaxPositionEmbeddings: 16) { ShortFactor = [1.0, 1.5, 2.0, 3.0], LongFactor = [1.0, 2.0, 4.0, 8.0] },
        };
        string model = TinyRecipeFiles.WriteModel(spec, dir.File("model"));
        var options = RecipeTests.Options(dir, model, steps: 8, trainRecords: 16) with
        {
            Method = TrainingMethod.Lora, Weights = WeightFormat.Bf16, Rank = 4, Alpha = 8, LearningRate = 5e-2,
        };
        string adapter = dir.File("adapter");
        using (var recipe = new FinetuneRecipe(options))
        {
            recipe.Setup();
            using (var log = new MetricsWriter(dir.File("metrics.jsonl"))) recipe.Train(log);
            recipe.Save(adapter);
        }
        string baseFile = dir.File("base-f16.gguf"), loraFile = dir.File("adapter.gguf"), mergedFile = dir.File("merged-f16.gguf");
        GgufExport.Write(model, null, GgufQuantType.F16, baseFile);
        GgufExport.Write(model, adapter, GgufQuantType.F16, mergedFile);
        var result = GgufLoraExport.Write(adapter, model, loraFile);
        Assert.Equal(2 * 2 * 4, result.Tensors);   // A and B of qkv_proj, o_proj, gate_up_proj, down_proj in 2 layers
        int[] ids = ByteIds(63);
        double[] reference;
        using (var loaded = GenerationModel.Load(model, adapter, WeightFormat.Bf16, ScalarType.Float32))
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var logp = loaded.Model.forward(tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length])).to(ScalarType.Float64).log_softmax(-1)[0];
            reference = logp.narrow(0, 0, ids.Length - 1).gather(1, tensor(ids.Skip(1).Select(i => (long)i).ToArray()).unsqueeze(1)).squeeze(1).data<double>().ToArray();
        }
        using var withLora = LlamaCppModel.Load(baseFile);
        double[] baseOnly = withLora.LogProbs(ids);
        withLora.UseLora(loraFile);
        double[] lora = withLora.LogProbs(ids);
        using var mergedModel = LlamaCppModel.Load(mergedFile);
        double[] merged = mergedModel.LogProbs(ids);
        double vsReference = MeanAbsDiff(lora, reference), mergedVsReference = MeanAbsDiff(merged, reference), effect = MeanAbsDiff(lora, baseOnly);
        output.WriteLine($"phi3 gguf-lora: mean |Δ log p| vs QuantPeft {vsReference:F5}; merged f16 GGUF vs QuantPeft {mergedVsReference:F5}; adapter effect {effect:F4}");
        Assert.True(effect > 0.1, $"the LoRA file changed log p by only {effect}");
        Assert.True(vsReference <= 0.01, $"gguf-lora vs QuantPeft: {vsReference}");
        Assert.True(mergedVsReference <= 0.01, $"merged vs QuantPeft: {mergedVsReference}");
    }

    [Fact]
    public void Phi3WindowShorterThanTheContext_IsRefused_BecauseLlamaCppWouldNotApplyIt()
    {
        // Measured with this llama.cpp: a phi3 GGUF with sliding_window 8 gives the log-probs of the same model without a
        // window (mean |Δ log p| 0.002) and differs from the windowed model by 1.85 on a 125-token text.
        using var dir = new TempDir();
        string json = GgufFixtures.BpeTokenizerJson(120, null);
        var spec = GgufFixtures.Spec("phi3", 64, 128, 4, 2, GgufFixtures.VocabSizeOf(json)) with { SlidingWindow = 8 };
        string folder = GgufFixtures.WriteModel(spec, dir.File("model"), GgufFixtures.BpeFiles(json));
        string gguf = dir.File("phi3.gguf");
        var e = Assert.Throws<ExportException>(() => GgufExport.Write(folder, null, GgufQuantType.F16, gguf));
        Assert.Contains("sliding_window 8", e.Message);
        Assert.False(File.Exists(gguf));
    }

    [Fact]
    public void Greedy32TokensOfTheDemoModelAreTheSameInLlamaCppAndQuantPeft()
    {
        using var dir = new TempDir();
        string demo = RecipeTests.DemoModelFolder();   // pretrained on English-like text: varied continuations, not a repeated token
        string gguf = dir.File("demo-f16.gguf");
        GgufExport.Write(demo, null, GgufQuantType.F16, gguf);
        using var llama = LlamaCppModel.Load(gguf, 256);
        using var loaded = GenerationModel.Load(demo, null, WeightFormat.Bf16, ScalarType.Float32);
        foreach (string text in new[] { "The ", "A small dog ", "Köln " })
        {
            int[] prompt = [ByteLevelTokenizer.Bos, .. Encoding.UTF8.GetBytes(text).Select(b => (int)b)];
            using var generator = new TextGenerator(loaded.Model, ByteLevelTokenizer.Size);
            var ours = generator.Generate(prompt, 32, new SamplingOptions(), new HashSet<int>()).Tokens;
            int[] theirs = llama.Greedy(prompt, 32);
            output.WriteLine($"{text}→ {Encoding.UTF8.GetString(ours.Where(t => t < 256).Select(t => (byte)t).ToArray()).ReplaceLineEndings("⏎")}");
            Assert.True(ours.Distinct().Count() > 5, "the continuation repeats a handful of tokens; the comparison would prove little");
            Assert.Equal(theirs, ours);
        }
    }

    [Fact]
    public void GgufLoraOnTheBaseGivesTheMergedModelsLogProbsInLlamaCpp()
    {
        using var dir = new TempDir();
        var (model, adapter, merged) = TrainedTinyModel(dir);
        string baseFile = dir.File("base-f16.gguf"), loraFile = dir.File("adapter.gguf"), mergedFile = dir.File("merged-f16.gguf");
        GgufExport.Write(model, null, GgufQuantType.F16, baseFile);
        GgufExport.Write(model, adapter, GgufQuantType.F16, mergedFile);
        var result = GgufLoraExport.Write(adapter, model, loraFile);
        Assert.Equal(2 * 2 * 7, result.Tensors);
        int[] ids = ByteIds(63);

        using var withLora = LlamaCppModel.Load(baseFile);
        double[] baseOnly = withLora.LogProbs(ids);
        withLora.UseLora(loraFile);
        double[] lora = withLora.LogProbs(ids);
        using var mergedModel = LlamaCppModel.Load(mergedFile);
        double[] mergedLogProbs = mergedModel.LogProbs(ids);
        // QuantPeft's base + adapter, unmerged, in float32: the same computation llama.cpp does with --lora.
        double[] reference;
        using (var loaded = GenerationModel.Load(model, adapter, WeightFormat.Bf16, ScalarType.Float32))
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var logp = loaded.Model.forward(tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length])).to(ScalarType.Float64).log_softmax(-1)[0];
            reference = logp.narrow(0, 0, ids.Length - 1).gather(1, tensor(ids.Skip(1).Select(i => (long)i).ToArray()).unsqueeze(1)).squeeze(1).data<double>().ToArray();
        }
        double vsReference = MeanAbsDiff(lora, reference), vsMerged = MeanAbsDiff(lora, mergedLogProbs), effect = MeanAbsDiff(lora, baseOnly);
        output.WriteLine($"gguf-lora on the f16 base: mean |Δ log p| vs QuantPeft base+adapter {vsReference:F5}, vs merged f16 GGUF {vsMerged:F5}; adapter effect {effect:F4}; {result.Bytes} bytes");
        Assert.True(effect > 0.5, $"the LoRA file changed log p by only {effect}");
        Assert.True(vsReference <= 0.01, $"vs QuantPeft: {vsReference}");
        Assert.True(vsMerged <= 0.01, $"vs merged: {vsMerged}");
    }
}
