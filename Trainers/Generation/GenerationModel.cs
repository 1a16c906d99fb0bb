using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Peft;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tokenizers;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Generation;

/// <summary>
/// A model loaded for <c>qpeft generate</c> and <c>qpeft chat</c>: the base built with the frozen weights format it was
/// trained on (bf16, or a 4-bit NF4/FP4 base as in QLoRA training), an adapter attached unmerged on top (LoRA and DoRA; VeRA
/// and OSoRA are merged into a dense base from their files), and the model's tokenizer.
/// </summary>
public sealed class GenerationModel : IDisposable
{
    private GenerationModel(CausalLm model, ITextTokenizer tokenizer, string folder)
    {
        Model = model;
        Tokenizer = tokenizer;
        Folder = folder;
    }

    /// <summary>The model, in evaluation use only.</summary>
    public CausalLm Model { get; }

    /// <summary>Its tokenizer.</summary>
    public ITextTokenizer Tokenizer { get; }

    /// <summary>The model folder (or synthetic reference).</summary>
    public string Folder { get; }

    /// <summary>Loads <paramref name="model"/> with <paramref name="adapterFolder"/> (a PEFT folder) attached.</summary>
    /// <param name="model">A model folder or <c>synthetic:NAME</c>.</param>
    /// <param name="adapterFolder">A PEFT adapter folder, or null.</param>
    /// <param name="weights">The base's frozen format: <see cref="WeightFormat.Bf16"/> keeps the checkpoint's values;
    /// NF4/FP4 quantize each projection on load, as QLoRA training does.</param>
    /// <param name="computeDType">Activation dtype (float32 on a CPU gives the closest agreement with other runtimes).</param>
    /// <param name="doubleQuant">Double-quantized 4-bit block scales, as training's <c>--double-quant</c>.</param>
    /// <exception cref="ExportException">The adapter does not fit the model, or a VeRA/OSoRA adapter on a 4-bit base.</exception>
    /// <param name="device">Where the model lives (<c>cpu</c>, <c>cuda:N</c>); the weights stream from the host as in training.</param>
    /// <param name="lqLoraBits">An LQ-LoRA run's <c>--weights lq-lora:BITS</c>: the base is rebuilt as training built it and the
    /// adapter's trained factors sit on it (<see cref="LqLoraRunModel"/>); <paramref name="weights"/> is then unused.</param>
    public static GenerationModel Load(string model, string? adapterFolder, WeightFormat weights, ScalarType computeDType, bool doubleQuant = false, string device = "cpu",
        double? lqLoraBits = null)
    {
        if (lqLoraBits is double bits)
        {
            if (adapterFolder is null) throw new ExportException($"--weights lq-lora:{bits}: needs --adapter, the LQ-LoRA run whose base it rebuilds");
            var tokenizerOfRun = ModelFolder.ReadTokenizer(model);
            var lq = LqLoraRunModel.Load(model, adapterFolder, bits, new DecoderOptions { ComputeDType = computeDType, Device = TorchSharp.torch.device(device) });
            return new GenerationModel(lq, tokenizerOfRun, model);
        }
        var spec = ModelFolder.ReadSpec(model);
        var tokenizer = ModelFolder.ReadTokenizer(model);
        IExportableAdapter? adapter = adapterFolder is null ? null : ExportableAdapters.Open(adapterFolder);
        try
        {
            adapter?.CheckFits(spec, SyntheticModel.IsSynthetic(model) ? model : Path.Combine(model, ModelConfigReader.FileName));
            if (adapter is not null and not LoraExportAdapter && weights != WeightFormat.Bf16)
                throw new ExportException($"{adapterFolder}: a {adapter.Method} adapter is merged into a dense base for generation; use --weights bf16");
            var options = new DecoderOptions
            {
                ComputeDType = computeDType,
                Device = TorchSharp.torch.device(device),
                LinearFactory = BaseWeights.Factory(weights, doubleQuant, computeDType, TorchSharp.torch.device(device)),
            };
            var lm = ModelFolder.Load(model, spec, options);
            try
            {
                switch (adapter)
                {
                    case LoraExportAdapter lora:
                        lora.Attach(lm);
                        break;
                    case not null:
                        adapter.MergeInto(lm);
                        break;
                }
                return new GenerationModel(lm, tokenizer, model);
            }
            catch
            {
                lm.Dispose();
                throw;
            }
        }
        finally
        {
            adapter?.Dispose();
        }
    }

    /// <inheritdoc/>
    public void Dispose() => Model.Dispose();
}
