using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Peft;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using static TorchSharp.torch;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Trainers.Generation;

/// <summary>
/// The model an LQ-LoRA run trained, rebuilt for generation: the mixed-precision base Q from the same bit allocation and
/// decomposition W ≈ Q + L1·L2 that training ran (both are deterministic: fixed SVD seed, fixed rounds), with its LoRA
/// holding the trained factors. The result is Q + s·B′A′, not the original W plus the exported update.
/// </summary>
/// <remarks>
/// An LQ-LoRA run's adapter is exported for the original weights as a rank-2r LoRA, A = [A′; A₀] and B = [B′, −B₀], α
/// doubled (docs/cli.md). Its first r rows and columns are the trained factors; the last r are the decomposition's start,
/// which this rebuild recomputes. Both must agree, or the bits, rank or targets given are not the run's: the rebuild
/// compares them and refuses a mismatch rather than generate from a base the adapter was not trained on.
/// </remarks>
public static class LqLoraRunModel
{
    // The recomputed start L1·L2 may differ from the stored one by the rounding of the dtype they were kept in (bf16).
    private const double StartTolerance = 2e-2;

    /// <summary>Loads <paramref name="model"/> as an LQ-LoRA base of <paramref name="bits"/> average bits with the run's trained adapter.</summary>
    /// <param name="model">The full-precision model folder the run trained from.</param>
    /// <param name="adapterFolder">The run's exported adapter (rank 2r).</param>
    /// <param name="bits">The run's <c>--weights lq-lora:BITS</c>.</param>
    /// <param name="options">The decoder options (dtype, device); its linear factory is replaced.</param>
    /// <exception cref="ExportException">The adapter is not an LQ-LoRA export, or its start factors are not this base's.</exception>
    public static CausalLm Load(string model, string adapterFolder, double bits, DecoderOptions options)
    {
        var spec = ModelFolder.ReadSpec(model);
        using var adapter = PeftAdapter.Load(adapterFolder);
        var config = adapter.Config;
        string where = Path.Combine(adapterFolder, PeftAdapter.ConfigFileName);
        if (config.PeftType != "LORA" || config.UseDora || config.UseRslora || config.RankPattern.Count > 0 || config.AlphaPattern.Count > 0 || config.R % 2 != 0)
            throw new ExportException($"{where}: not an LQ-LoRA run's adapter (a plain LoRA of even rank 2r without rank or alpha patterns); --weights lq-lora needs one");
        int rank = config.R / 2;
        var lora = new LoraOptions(rank, config.LoraAlpha / 2);
        var targets = adapter.Modules.Select(m => m.ModulePath[(m.ModulePath.LastIndexOf('.') + 1)..]).Distinct(StringComparer.Ordinal).ToList();

        IReadOnlyDictionary<string, QuantPeft.Quant.LqLora.LqQuantConfig> configs;
        try
        {
            configs = ModelFolder.WithWeights(model, source => LqLoraPlan.Allocate(source, targets, rank, bits));
        }
        catch (QuantPeft.Quant.QuantInputException e)
        {
            throw new ExportException($"--weights lq-lora:{bits}: {e.Message}");
        }
        var lm = ModelFolder.Load(model, spec, options with { LinearFactory = LqLoraPlan.Factory(configs, targets, rank, lora.Scaling, options.ComputeDType, options.Device) });
        try
        {
            var attached = ModelAdapters.Attach(lm, TrainingMethod.Lora, lora, targets, seed: 0);
            var byPath = adapter.Modules.ToDictionary(m => m.ModulePath, StringComparer.Ordinal);
            if (attached.Count != byPath.Count)
                throw new ExportException($"{adapterFolder}: {byPath.Count} adapted modules, but the LQ-LoRA base of these targets has {attached.Count}");
            foreach (var a in attached)
            {
                if (!byPath.ContainsKey(a.ModulePath))
                    throw new ExportException($"{adapterFolder}: no adapter for '{a.ModulePath}'");
                using var scope = NewDisposeScope();
                var fullA = Read(adapter, LoraTensorNames.LoraA(a.ModulePath));   // [2r, in]
                var fullB = Read(adapter, LoraTensorNames.LoraB(a.ModulePath));   // [out, 2r]
                var start = a.Initial!;
                CheckStart(fullA.narrow(0, rank, rank), start["lora_A.weight"], fullB.narrow(1, rank, rank).neg(), start["lora_B.weight"], a.ModulePath, bits, adapterFolder);
                a.Layer.LoadAdapterTensors(new Dictionary<string, Tensor>
                {
                    ["lora_A.weight"] = fullA.narrow(0, 0, rank).contiguous(),
                    ["lora_B.weight"] = fullB.narrow(1, 0, rank).contiguous(),
                });
            }
            foreach (var a in attached)
                foreach (var t in a.Initial!.Values) t.Dispose();
            return lm;
        }
        catch
        {
            lm.Dispose();
            throw;
        }
    }

    private static Tensor Read(PeftAdapter adapter, string key)
    {
        var info = adapter.Weights.GetTensor(key);
        return tensor(adapter.Weights.ReadFloat32(key), info.Shape.ToArray());
    }

    // Compares the stored start s·B₀A₀ with the recomputed one (the products, since a factor pair is unique only up to an
    // invertible r×r mixing), relative to the start's own size.
    private static void CheckStart(Tensor storedA, Tensor startA, Tensor storedB, Tensor startB, string module, double bits, string adapterFolder)
    {
        using var scope = NewDisposeScope();
        var stored = storedB.to(ScalarType.Float32).matmul(storedA.to(ScalarType.Float32));
        var recomputed = startB.to(ScalarType.Float32).cpu().matmul(startA.to(ScalarType.Float32).cpu());
        double size = recomputed.norm().item<float>();
        double diff = stored.sub(recomputed).norm().item<float>();
        if (!(diff <= StartTolerance * Math.Max(size, 1e-12)))
            throw new ExportException($"{adapterFolder}: '{module}': the adapter's start factors differ from the LQ-LoRA decomposition at --weights lq-lora:{bits} " +
                $"(relative difference {diff / Math.Max(size, 1e-12):0.###}); give the bits and model the run trained with");
    }
}
