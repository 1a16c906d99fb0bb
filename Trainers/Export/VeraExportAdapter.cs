using System.Text.Json;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Peft;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Export;

/// <summary>
/// A PEFT VeRA folder (<c>peft_type: "VERA"</c>) merged from its files: per module ΔW = diag(λ_b) B[:out] diag(λ_d) A[:, :in],
/// with the shared projections <c>base_model.vera_A</c> [r, max in] and <c>base_model.vera_B</c> [max out, r] sliced to the
/// layer as PEFT's <c>get_delta_weight</c> does (<see cref="VeraLinear.SlicedDelta"/>).
/// </summary>
/// <remarks>
/// The projections must be in the file (<c>save_projection: true</c>, PEFT's default and what qpeft writes): without them
/// PEFT regenerates them from <c>projection_prng_key</c> with PyTorch's generator and kaiming bounds, which this reader
/// does not reproduce, so such a folder is refused rather than merged with other matrices.
/// </remarks>
internal sealed class VeraExportAdapter : PeftFolderExportAdapter
{
    private static readonly string[] Locals = ["vera_lambda_d", "vera_lambda_b"];
    private readonly long[] _a, _b;

    private VeraExportAdapter(string folder, PeftAdapterConfig config, AdapterTensorFile file,
        SortedDictionary<string, Dictionary<string, long[]>> modules, long[] a, long[] b)
        : base(folder, config, file, modules)
    {
        (_a, _b) = (a, b);
    }

    public override string Method => "VeRA";

    /// <summary>Reads and checks the tensors of the VeRA folder whose config is <paramref name="config"/>.</summary>
    /// <exception cref="ExportException">The projections are not saved, or the tensors do not form a VeRA adapter of rank <c>r</c>.</exception>
    public static VeraExportAdapter Open(string folder, PeftAdapterConfig config)
    {
        string configPath = Path.Combine(folder, PeftAdapter.ConfigFileName);
        if (config.AdditionalKeys.TryGetValue("save_projection", out var save) && save.ValueKind == JsonValueKind.False)
            throw new ExportException($"{configPath}: save_projection is false, so vera_A/vera_B are not in the folder; PEFT regenerates them from projection_prng_key with PyTorch's generator, which qpeft does not reproduce. Save the adapter with save_projection=True");
        return OpenChecked(folder, file =>
        {
            string[] shared = [RunAdapterFormats.VeraAKey, RunAdapterFormats.VeraBKey];
            var a = file.Shape(RunAdapterFormats.VeraAKey, "VeRA's shared projection A [r, max in_features], saved with save_projection");
            var b = file.Shape(RunAdapterFormats.VeraBKey, "VeRA's shared projection B [max out_features, r], saved with save_projection");
            if (a.Length != 2 || a[0] != config.R)
                throw new ExportException($"{file.Path}: '{RunAdapterFormats.VeraAKey}' has shape {AdapterTensorFile.Text(a)}, expected [r = {config.R} ({configPath}), max in_features]");
            if (b.Length != 2 || b[1] != config.R)
                throw new ExportException($"{file.Path}: '{RunAdapterFormats.VeraBKey}' has shape {AdapterTensorFile.Text(b)}, expected [max out_features, r = {config.R} ({configPath})]");
            var modules = file.Modules(Locals, shared, "VeRA");
            foreach (var (module, parts) in modules)
            {
                if (parts["vera_lambda_d"] is not [var r] || r != config.R)
                    throw new ExportException($"{file.Path}: '{AdapterTensorFile.Key(module, "vera_lambda_d")}' has shape {AdapterTensorFile.Text(parts["vera_lambda_d"])}, expected [r] = [{config.R}]");
                if (parts["vera_lambda_b"].Length != 1)
                    throw new ExportException($"{file.Path}: '{AdapterTensorFile.Key(module, "vera_lambda_b")}' has shape {AdapterTensorFile.Text(parts["vera_lambda_b"])}, expected [out_features]");
            }
            return new VeraExportAdapter(folder, config, file, modules, a, b);
        });
    }

    public override void CheckFits(ModelSpec spec, string modelConfigPath)
    {
        ExportChecks.Config(Config, ConfigPath, spec);
        var shapes = ExportChecks.Shapes(spec);
        foreach (var (module, parts) in Modules)
        {
            var shape = ExportChecks.ProjectionShape(shapes, module, TensorFile.Path, spec, modelConfigPath);
            long lambdaB = parts["vera_lambda_b"][0];
            if (lambdaB != shape[0])
                throw new ExportException($"{TensorFile.Path}: '{AdapterTensorFile.Key(module, "vera_lambda_b")}' has {lambdaB} entries, the model's weight has {shape[0]} output rows ({modelConfigPath}); the adapter was trained on another model");
            if (shape[1] > _a[1] || shape[0] > _b[0])
                throw new ExportException($"{TensorFile.Path}: the shared projections (vera_A {AdapterTensorFile.Text(_a)}, vera_B {AdapterTensorFile.Text(_b)}) are smaller than module '{module}' [{shape[0]}, {shape[1]}] (out, in) of {modelConfigPath}; the adapter was trained on another model");
        }
    }

    public override int MergeInto(CausalLm model)
    {
        var device = model.LmHeadWeight.device;
        using var a = TensorFile.Read(RunAdapterFormats.VeraAKey, device);
        using var b = TensorFile.Read(RunAdapterFormats.VeraBKey, device);
        foreach (var module in Modules.Keys)
        {
            using var scope = NewDisposeScope();
            var linear = ExportChecks.DenseBase(model, module);
            var lambdaD = TensorFile.Read(AdapterTensorFile.Key(module, "vera_lambda_d"), linear.Device);
            var lambdaB = TensorFile.Read(AdapterTensorFile.Key(module, "vera_lambda_b"), linear.Device);
            linear.AddToWeight(VeraLinear.SlicedDelta(a, b, lambdaD, lambdaB, linear.InFeatures, linear.OutFeatures));
        }
        return Modules.Count;
    }

}
