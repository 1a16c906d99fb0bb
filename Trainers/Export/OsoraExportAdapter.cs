using System.Text.Json;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Peft;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Export;

/// <summary>
/// An OSoRA folder (<c>peft_type: "OSORA"</c>, docs/formats.md) merged from its files, without an SVD: the training base was
/// W_res = W − U_r diag(S_init) V_rᵀ and the layer added diag(O) U_r diag(S) V_rᵀ, so on the original W the merged weight is
/// <c>W' = W + U_r (O Sᵀ − 1 S_initᵀ) V_rᵀ</c> (the bracket an [out, r] matrix scaling U_r entry by entry: one matmul, one rounding).
/// </summary>
internal sealed class OsoraExportAdapter : PeftFolderExportAdapter
{
    private static readonly string[] Locals = ["osora_U", "osora_V", "osora_S", "osora_O", RunAdapterFormats.OsoraInitialS];

    private OsoraExportAdapter(string folder, PeftAdapterConfig config, AdapterTensorFile file, SortedDictionary<string, Dictionary<string, long[]>> modules)
        : base(folder, config, file, modules)
    {
    }

    public override string Method => "OSoRA";

    /// <summary>Reads and checks the tensors of the OSoRA folder whose config is <paramref name="config"/>.</summary>
    /// <exception cref="ExportException">Another initialisation than <c>default</c>, or tensors that do not form an OSoRA adapter of rank <c>r</c>.</exception>
    public static OsoraExportAdapter Open(string folder, PeftAdapterConfig config)
    {
        string configPath = Path.Combine(folder, PeftAdapter.ConfigFileName);
        // Only "default" (O₀ = 1, residual subtracted) makes S_init describe the residual; "zeros" and "gaussian" start elsewhere.
        if (config.AdditionalKeys.TryGetValue("init_weights", out var init) && !(init.ValueKind == JsonValueKind.String && init.GetString() == "default"))
            throw new ExportException($"{configPath}: init_weights {init.GetRawText()} is not merged by qpeft; expected \"default\" (O₀ = 1, the residual W − U_r diag(S_init) V_rᵀ), as qpeft writes");
        return OpenChecked(folder, file =>
        {
            var modules = file.Modules(Locals, [], "OSoRA");
            foreach (var (module, p) in modules)
            {
                long r = config.R;
                if (p["osora_U"] is not [var outU, var rU] || rU != r)
                    throw Bad(file, module, "osora_U", p, $"[out_features, r = {r}]");
                if (p["osora_V"] is not [var rV, _] || rV != r)
                    throw Bad(file, module, "osora_V", p, $"[r = {r}, in_features]");
                if (p["osora_O"] is not [var outO] || outO != outU)
                    throw Bad(file, module, "osora_O", p, $"[{outU}] (out_features of osora_U)");
                foreach (var s in new[] { "osora_S", RunAdapterFormats.OsoraInitialS })
                    if (p[s] is not [var rS] || rS != r)
                        throw Bad(file, module, s, p, $"[r] = [{r}]");
            }
            return new OsoraExportAdapter(folder, config, file, modules);
        });
    }

    private static ExportException Bad(AdapterTensorFile file, string module, string local, Dictionary<string, long[]> parts, string expected) =>
        new($"{file.Path}: '{AdapterTensorFile.Key(module, local)}' has shape {AdapterTensorFile.Text(parts[local])}, expected {expected}");

    public override void CheckFits(ModelSpec spec, string modelConfigPath)
    {
        ExportChecks.Config(Config, ConfigPath, spec);
        var shapes = ExportChecks.Shapes(spec);
        foreach (var (module, p) in Modules)
        {
            var shape = ExportChecks.ProjectionShape(shapes, module, TensorFile.Path, spec, modelConfigPath);
            long outFeatures = p["osora_U"][0], inFeatures = p["osora_V"][1];
            if (shape[0] != outFeatures || shape[1] != inFeatures)
                throw new ExportException($"{TensorFile.Path}: module '{module}' adapts [{outFeatures}, {inFeatures}] (out, in), the model's weight is [{shape[0]}, {shape[1]}] ({modelConfigPath}); the adapter was trained on another model");
        }
    }

    public override int MergeInto(CausalLm model)
    {
        foreach (var module in Modules.Keys)
        {
            using var scope = NewDisposeScope();
            var linear = ExportChecks.DenseBase(model, module);
            Tensor Read(string local) => TensorFile.Read(AdapterTensorFile.Key(module, local), linear.Device);
            Tensor u = Read("osora_U"), vh = Read("osora_V"), s = Read("osora_S"), o = Read("osora_O"), sInit = Read(RunAdapterFormats.OsoraInitialS);
            Tensor coefficients = o.unsqueeze(1).mul(s.unsqueeze(0)).sub(sInit.unsqueeze(0));   // (out, r): O_i S_k − S_init,k
            linear.AddToWeight(u.mul(coefficients).matmul(vh));
        }
        return Modules.Count;
    }

}
