using System.Text.Json;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Peft;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Export;

/// <summary>
/// A PEFT RandLoRA folder (<c>peft_type: "RANDLORA"</c>) merged from its files: per module ΔW = (α / r) · P Q with the shared
/// bases <c>base_model.randlora_A</c> [r, 1, min] and <c>base_model.randlora_B</c> [max, n, r] sliced to the layer and the
/// module's <c>randlora_lambda</c> [r, n] and <c>randlora_gamma</c> [n, min], as PEFT's <c>get_delta_weight</c> does
/// (<see cref="RandLoraLinear.SlicedDelta"/>).
/// </summary>
/// <remarks>
/// The bases must be in the file (<c>save_projection: true</c>, PEFT's default and what qpeft writes). PEFT's own save also
/// writes each module's reference to them (<c>&lt;module&gt;.randlora_A</c>, <c>.randlora_B</c>, copies of the shared
/// tensors); those are accepted and not read. The sparse variants draw other bases and are refused.
/// </remarks>
internal sealed class RandLoraExportAdapter : PeftFolderExportAdapter
{
    private const string LambdaKey = "randlora_lambda", GammaKey = "randlora_gamma";
    private const double PeftDefaultAlpha = 640;   // RandLoraConfig.randlora_alpha
    private readonly long[] _a, _b;
    private readonly double _scaling;

    private RandLoraExportAdapter(string folder, PeftAdapterConfig config, AdapterTensorFile file,
        SortedDictionary<string, Dictionary<string, long[]>> modules, long[] a, long[] b, double scaling)
        : base(folder, config, file, modules)
    {
        (_a, _b, _scaling) = (a, b, scaling);
    }

    public override string Method => "RandLoRA";

    /// <summary>Reads and checks the tensors of the RandLoRA folder whose config is <paramref name="config"/>.</summary>
    /// <exception cref="ExportException">The bases are not saved, a sparse variant, or tensors that do not form a RandLoRA adapter of rank <c>r</c>.</exception>
    public static RandLoraExportAdapter Open(string folder, PeftAdapterConfig config)
    {
        string configPath = Path.Combine(folder, PeftAdapter.ConfigFileName);
        var keys = config.AdditionalKeys;
        if (keys.TryGetValue("save_projection", out var save) && save.ValueKind == JsonValueKind.False)
            throw new ExportException($"{configPath}: save_projection is false, so randlora_A/randlora_B are not in the folder; save the adapter with save_projection=True");
        foreach (var sparse in new[] { "sparse", "very_sparse" })
            if (keys.TryGetValue(sparse, out var v) && v.ValueKind == JsonValueKind.True)
                throw new ExportException($"{configPath}: {sparse} is true; qpeft merges the dense RandLoRA bases only");
        double alpha = PeftDefaultAlpha;
        if (keys.TryGetValue("randlora_alpha", out var alphaJson))
            alpha = alphaJson.ValueKind == JsonValueKind.Number && alphaJson.GetDouble() > 0
                ? alphaJson.GetDouble()
                : throw new ExportException($"{configPath}: \"randlora_alpha\": expected a positive number, found {alphaJson.GetRawText()}");
        return OpenChecked(folder, file =>
        {
            var a = file.Shape(RandLoraBases.AKey, "RandLoRA's shared base A [r, 1, min], saved with save_projection");
            var b = file.Shape(RandLoraBases.BKey, "RandLoRA's shared bases B [max, n, r], saved with save_projection");
            if (a is not [var ra, 1, _] || ra != config.R)
                throw new ExportException($"{file.Path}: '{RandLoraBases.AKey}' has shape {AdapterTensorFile.Text(a)}, expected [r = {config.R} ({configPath}), 1, min]");
            if (b is not [_, _, var rb] || rb != config.R)
                throw new ExportException($"{file.Path}: '{RandLoraBases.BKey}' has shape {AdapterTensorFile.Text(b)}, expected [max, n, r = {config.R} ({configPath})]");
            var shared = file.Names.Where(n => n is RandLoraBases.AKey or RandLoraBases.BKey
                || n.StartsWith(LoraTensorNames.Prefix, StringComparison.Ordinal) && (n.EndsWith(".randlora_A", StringComparison.Ordinal) || n.EndsWith(".randlora_B", StringComparison.Ordinal))).ToHashSet();
            var modules = file.Modules([LambdaKey, GammaKey], shared, "RandLoRA");
            foreach (var (module, parts) in modules)
            {
                if (parts[LambdaKey] is not [var r, var n] || r != config.R)
                    throw new ExportException($"{file.Path}: '{AdapterTensorFile.Key(module, LambdaKey)}' has shape {AdapterTensorFile.Text(parts[LambdaKey])}, expected [r = {config.R}, n]");
                if (parts[GammaKey] is not [var n2, _] || n2 != n)
                    throw new ExportException($"{file.Path}: '{AdapterTensorFile.Key(module, GammaKey)}' has shape {AdapterTensorFile.Text(parts[GammaKey])}, expected [n = {n}, min(in_features, out_features)]");
            }
            return new RandLoraExportAdapter(folder, config, file, modules, a, b, alpha / config.R);
        });
    }

    public override void CheckFits(ModelSpec spec, string modelConfigPath)
    {
        ExportChecks.Config(Config, ConfigPath, spec);
        var shapes = ExportChecks.Shapes(spec);
        foreach (var (module, parts) in Modules)
        {
            var shape = ExportChecks.ProjectionShape(shapes, module, TensorFile.Path, spec, modelConfigPath);
            long min = Math.Min(shape[0], shape[1]), max = Math.Max(shape[0], shape[1]);
            long n = RandLoraBases.BaseCount(min, Config.R);
            if (parts[LambdaKey][1] != n || parts[GammaKey][1] != min)
                throw new ExportException($"{TensorFile.Path}: module '{module}' has randlora_lambda {AdapterTensorFile.Text(parts[LambdaKey])} and randlora_gamma {AdapterTensorFile.Text(parts[GammaKey])}; the model's [{shape[0]}, {shape[1]}] weight ({modelConfigPath}) needs [{Config.R}, {n}] and [{n}, {min}]; the adapter was trained on another model");
            if (min > _a[2] || max > _b[0] || n > _b[1])
                throw new ExportException($"{TensorFile.Path}: the shared bases (randlora_A {AdapterTensorFile.Text(_a)}, randlora_B {AdapterTensorFile.Text(_b)}) are smaller than module '{module}' [{shape[0]}, {shape[1]}] (out, in) of {modelConfigPath}; the adapter was trained on another model");
        }
    }

    public override int MergeInto(CausalLm model)
    {
        var device = model.LmHeadWeight.device;
        using var a = TensorFile.Read(RandLoraBases.AKey, device);
        using var b = TensorFile.Read(RandLoraBases.BKey, device);
        foreach (var module in Modules.Keys)
        {
            using var scope = NewDisposeScope();
            var linear = ExportChecks.DenseBase(model, module);
            var lambda = TensorFile.Read(AdapterTensorFile.Key(module, LambdaKey), linear.Device);
            var gamma = TensorFile.Read(AdapterTensorFile.Key(module, GammaKey), linear.Device);
            linear.AddToWeight(RandLoraLinear.SlicedDelta(a, b, lambda, gamma, linear.InFeatures, linear.OutFeatures, _scaling));
        }
        return Modules.Count;
    }
}
