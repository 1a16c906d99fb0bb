using QuantPeft.Formats.Peft;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tests.Recipes;
using QuantPeft.Trainers.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Export;

/// <summary>
/// Adapters as <c>qpeft train</c> writes them (VeRA in PEFT's names, OSoRA under its own peft_type, PiSSA as a rank-2r LoRA
/// on the original base), merged by export and read back as plain dense models: the logits are the trained model's, and
/// one layer's merged weight is the documented formula evaluated with loops over the files' tensors.
/// </summary>
public class TrainedAdapterMergeTests(ITestOutputHelper output)
{
    private static readonly long[] Ids = [256, 117, 112, 112, 101, 114, 58, 32, 97, 98, 99, 100, 61, 62, 32, 65, 66, 67];

    /// <summary>f32 logits of a fixed probe text (an upper-case task prompt); the export tests compare models on it.</summary>
    internal static Tensor Logits(CausalLm model)
    {
        using var ids = tensor(Ids, [1, Ids.Length]);
        using (no_grad()) return model.forward(ids).to(ScalarType.Float32);
    }

    // Trains the tiny model, saves the run's adapter folder, returns the trained (base + adapter, unmerged) logits.
    private static Tensor TrainAndSave(FinetuneOptions options, string adapter)
    {
        using var recipe = new FinetuneRecipe(options);
        recipe.Setup();
        using (var log = new MetricsWriter(options.ModelFolder + ".metrics.jsonl")) recipe.Train(log);
        recipe.Save(adapter);
        return Logits(recipe.Model).DetachFromDisposeScope();
    }

    // Trains, merges through the export's library entry point, and checks the merged folder's logits; returns the folders.
    private (string Model, string Adapter, string Merged) TrainMergeAndCompare(TempDir dir, TrainingMethod method, int rank, double alpha, double lr)
    {
        string model = RecipeTests.WriteTinyModel(dir);
        var options = RecipeTests.Options(dir, model, steps: 8, trainRecords: 16) with
        {
            Method = method, Weights = WeightFormat.Bf16, Rank = rank, Alpha = alpha, LearningRate = lr,
        };
        string adapter = dir.File("adapter"), merged = dir.File("merged");
        using var trained = TrainAndSave(options, adapter);
        var result = MergedModelExport.Merge(adapter, model, merged, maxShardBytes: 1L << 30);
        Assert.Equal(2 * 7, result.MergedModules);

        using var plainBase = ModelFolder.Load(model, ModelFolder.ReadSpec(model), new DecoderOptions { ComputeDType = ScalarType.BFloat16 });
        using var baseLogits = Logits(plainBase);
        // The merged folder read as an ordinary dense model: plain linears, no adapter code involved.
        using var mergedModel = ModelFolder.Load(merged, ModelFolder.ReadSpec(merged), new DecoderOptions { ComputeDType = ScalarType.BFloat16 });
        using var actual = Logits(mergedModel);

        float scale = trained.abs().max().item<float>();
        float error = (actual - trained).abs().max().item<float>(), meanError = (actual - trained).abs().mean().item<float>();
        float effect = (baseLogits - trained).abs().max().item<float>();
        // bf16 tolerance: the trained model runs the bf16 base (PiSSA/OSoRA: the residual W − start, rounded to bf16 once) plus
        // the f32 adapter path; the merged model rounds W + ΔW to bf16 once. Each weight differs by at most about one bf16 ulp
        // (2^-8 relative); this model's logits are dominated by its tied embedding (std 0.5), so those weight differences
        // reach the logits far below the rounding of the logits themselves, which are bf16: one ulp of the largest logit is
        // 2^(⌊log2 scale⌋ − 7). Measured: max diff 0.0625 for all three (one ulp at a largest logit of 10.3, half an ulp at
        // 17.3), mean 0.008 to 0.011 (under a fifth of an ulp). Bound: max 3 ulps, mean 1 ulp. Training must move the logits by more than 4 times the max bound, so merged
        // and unmerged (or a wrong formula) cannot both pass.
        float ulp = MathF.Pow(2, MathF.Floor(MathF.Log2(scale)) - 7);
        output.WriteLine($"{method}: max |logit| {scale:F3} (bf16 ulp {ulp}), merged vs trained max diff {error:F4} mean {meanError:F5}, adapter effect max {effect:F3}");
        Assert.True(effect > 4 * 3 * ulp, $"{method}: training moved the logits by only {effect} (bf16 ulp {ulp})");
        Assert.True(error <= 3 * ulp, $"{method}: merged vs trained: max diff {error} (bf16 ulp {ulp})");
        Assert.True(meanError <= ulp, $"{method}: merged vs trained: mean diff {meanError} (bf16 ulp {ulp})");
        return (model, adapter, merged);
    }

    // merged[i, j] against W0[i, j] + delta(i, j) in f64: the export rounds once to bf16, within 2^-8 relative (plus slack near zero).
    private static void AssertMergedWeight(string model, string merged, string module, int rows, int cols, Func<int, int, double> delta)
    {
        using var baseFile = SafetensorsFile.Open(Path.Combine(model, "model.safetensors"));
        using var mergedFile = SafetensorsFile.Open(Path.Combine(merged, "model.safetensors"));
        float[] w0 = baseFile.ReadFloat32(module + ".weight"), w1 = mergedFile.ReadFloat32(module + ".weight");
        Assert.Equal(rows * cols, w1.Length);
        double moved = 0;
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
            {
                double d = delta(i, j), truth = w0[i * cols + j] + d;
                moved = Math.Max(moved, Math.Abs(d));
                Assert.True(Math.Abs(w1[i * cols + j] - truth) <= Math.Abs(truth) / 256 + 1e-5, $"{module}[{i}, {j}]: merged {w1[i * cols + j]}, formula {truth}");
            }
        // The update itself is far above the rounding, so the comparison sees it.
        Assert.True(moved > 1e-2, $"{module}: largest |ΔW| {moved}");
    }

    [Fact]
    public void VeraRunMergesToTheTrainedLogitsAndPeftsSlicedDelta()
    {
        using var dir = new TempDir();
        var (model, adapter, merged) = TrainMergeAndCompare(dir, TrainingMethod.Vera, rank: 8, alpha: 16, lr: 2e-1);

        // ΔW = diag(λ_b) vera_B[:out, :] diag(λ_d) vera_A[:, :in], read from the adapter file. down_proj [32, 64] uses all of
        // vera_A [8, 64] and the first 32 of vera_B's 64 rows; q_proj [32, 32] the first 32 columns of vera_A.
        using var file = SafetensorsFile.Open(Path.Combine(adapter, PeftAdapter.WeightsFileName));
        float[] a = file.ReadFloat32("base_model.vera_A"), b = file.ReadFloat32("base_model.vera_B");
        const int r = 8, maxIn = 64;
        foreach (var (module, rows, cols) in new[] { ("model.layers.1.mlp.down_proj", 32, 64), ("model.layers.0.self_attn.q_proj", 32, 32) })
        {
            float[] ld = file.ReadFloat32($"base_model.model.{module}.vera_lambda_d"), lb = file.ReadFloat32($"base_model.model.{module}.vera_lambda_b");
            AssertMergedWeight(model, merged, module, rows, cols, (i, j) =>
            {
                double s = 0;
                for (int k = 0; k < r; k++) s += (double)b[i * r + k] * ld[k] * a[k * maxIn + j];
                return lb[i] * s;
            });
        }
    }

    [Fact]
    public void OsoraRunMergesToTheTrainedLogitsAndTheDocumentedFormula()
    {
        using var dir = new TempDir();
        var (model, adapter, merged) = TrainMergeAndCompare(dir, TrainingMethod.Osora, rank: 4, alpha: 8, lr: 2e-1);

        // docs/formats.md: W' = W − U_r diag(S_init) V_rᵀ + diag(O) U_r diag(S) V_rᵀ, the two terms summed separately.
        using var file = SafetensorsFile.Open(Path.Combine(adapter, PeftAdapter.WeightsFileName));
        const string module = "model.layers.1.mlp.gate_proj";
        const int rows = 64, cols = 32, r = 4;
        string p = $"base_model.model.{module}.";
        float[] u = file.ReadFloat32(p + "osora_U"), v = file.ReadFloat32(p + "osora_V"), s = file.ReadFloat32(p + "osora_S");
        float[] o = file.ReadFloat32(p + "osora_O"), s0 = file.ReadFloat32(p + "osora_S_init");
        Assert.NotEqual(s0, s);
        AssertMergedWeight(model, merged, module, rows, cols, (i, j) =>
        {
            double removed = 0, added = 0;
            for (int k = 0; k < r; k++)
            {
                removed += (double)u[i * r + k] * s0[k] * v[k * cols + j];
                added += (double)u[i * r + k] * s[k] * v[k * cols + j];
            }
            return o[i] * added - removed;
        });
    }

    [Fact]
    public void PissaRunExportedAsARank2rLoraMergesToTheTrainedLogits()
    {
        using var dir = new TempDir();
        var (model, adapter, merged) = TrainMergeAndCompare(dir, TrainingMethod.Pissa, rank: 4, alpha: 8, lr: 5e-2);

        // The folder is the LoRA A = [A′; A₀], B = [B′, −B₀] of rank 2r = 8 with α = 2·8, so s = 16/8 = 2: W' = W + 2·B·A.
        using var file = SafetensorsFile.Open(Path.Combine(adapter, PeftAdapter.WeightsFileName));
        const string module = "model.layers.0.mlp.down_proj";
        const int rows = 32, cols = 64, r = 8;
        float[] a = file.ReadFloat32(LoraTensorNames.LoraA(module)), b = file.ReadFloat32(LoraTensorNames.LoraB(module));
        AssertMergedWeight(model, merged, module, rows, cols, (i, j) =>
        {
            double d = 0;
            for (int k = 0; k < r; k++) d += (double)b[i * r + k] * a[k * cols + j];
            return 2.0 * d;
        });
    }
}
