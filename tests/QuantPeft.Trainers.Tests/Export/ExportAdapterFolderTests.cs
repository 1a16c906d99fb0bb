using QuantPeft.Formats.Peft;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tests.Recipes;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Export;

/// <summary>VeRA and OSoRA folders that do not describe a mergeable adapter are refused with the file and tensor named, before anything is written.</summary>
public class ExportAdapterFolderTests
{
    private const string Q = "model.layers.0.self_attn.q_proj", Down = "model.layers.1.mlp.down_proj";

    private static string Key(string module, string local) => LoraTensorNames.Prefix + module + "." + local;

    private static string Write(TempDir dir, string name, string config, Dictionary<string, Tensor> tensors)
    {
        string folder = dir.File(name);
        AdapterFolderWriter.Write(folder, config, tensors.Select(kv => SafetensorsModelSource.Entry(kv.Key, kv.Value)).ToList());
        foreach (var t in tensors.Values) t.Dispose();
        return folder;
    }

    // A rank-4 VeRA on q_proj [32, 32] and down_proj [32, 64] of the tiny recipe model (hidden 32, MLP 64).
    private static Dictionary<string, Tensor> Vera(long aColumns = 64, long qLambdaB = 32) => new()
    {
        [RunAdapterFormats.VeraAKey] = randn(4, aColumns), [RunAdapterFormats.VeraBKey] = randn(64, 4),
        [Key(Q, "vera_lambda_d")] = randn(4), [Key(Q, "vera_lambda_b")] = randn(qLambdaB),
        [Key(Down, "vera_lambda_d")] = randn(4), [Key(Down, "vera_lambda_b")] = randn(32),
    };

    private const string VeraConfig = """{"peft_type": "VERA", "r": 4, "target_modules": ["q_proj", "down_proj"], "save_projection": true}""";

    private static Dictionary<string, Tensor> Osora(long downIn = 64) => new()
    {
        [Key(Down, "osora_U")] = randn(32, 4), [Key(Down, "osora_V")] = randn(4, downIn), [Key(Down, "osora_S")] = randn(4),
        [Key(Down, "osora_O")] = randn(32), [Key(Down, RunAdapterFormats.OsoraInitialS)] = randn(4),
    };

    private const string OsoraConfig = """{"peft_type": "OSORA", "r": 4, "target_modules": ["down_proj"], "init_weights": "default"}""";

    private static void AssertRefused(string adapter, string model, TempDir dir, params string[] fragments)
    {
        string output = dir.File("out");
        var e = Assert.ThrowsAny<QuantPeft.Formats.QuantPeftException>(() => MergedModelExport.Merge(adapter, model, output, 1L << 30));
        foreach (var f in fragments) Assert.Contains(f, e.Message);
        Assert.False(Directory.Exists(output));
        Assert.Empty(Directory.GetDirectories(dir.Path, ".out*"));
    }

    [Fact]
    public void BrokenVeraFoldersAreRefusedNamingTheTensorAndTheFile()
    {
        using var dir = new TempDir();
        string model = RecipeTests.WriteTinyModel(dir);
        manual_seed(1);

        // Without the shared projection there is nothing to slice.
        var noA = Vera();
        noA.Remove(RunAdapterFormats.VeraAKey, out var a);
        a!.Dispose();
        AssertRefused(Write(dir, "no-a", VeraConfig, noA), model, dir, PeftAdapter.WeightsFileName, "missing tensor 'base_model.vera_A'");

        var noLambda = Vera();
        noLambda.Remove(Key(Down, "vera_lambda_d"), out var d);
        d!.Dispose();
        AssertRefused(Write(dir, "no-lambda", VeraConfig, noLambda), model, dir, PeftAdapter.WeightsFileName, $"missing tensor '{Key(Down, "vera_lambda_d")}'");

        AssertRefused(Write(dir, "wide-b", VeraConfig, Vera(qLambdaB: 48)), model, dir, Key(Q, "vera_lambda_b"), "has 48 entries", "trained on another model");
        AssertRefused(Write(dir, "narrow-a", VeraConfig, Vera(aColumns: 32)), model, dir, "smaller than module 'model.layers.1.mlp.down_proj'");
        AssertRefused(Write(dir, "rank", VeraConfig.Replace("\"r\": 4", "\"r\": 8"), Vera()), model, dir, "'base_model.vera_A' has shape [4, 64]", "r = 8");
        AssertRefused(Write(dir, "regenerated", VeraConfig.Replace("true", "false"), Vera()), model, dir, PeftAdapter.ConfigFileName, "save_projection is false");

        var stray = Vera();
        stray["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] = randn(4, 32);
        AssertRefused(Write(dir, "stray", VeraConfig, stray), model, dir, "'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' is not part of a VeRA adapter");

        // The well-formed folder passes the same checks: it merges, and copies without --merge.
        string good = Write(dir, "good", VeraConfig, Vera());
        Assert.Equal(2, MergedModelExport.Merge(good, model, dir.File("merged"), 1L << 30).MergedModules);
        var copied = PeftAdapterCopy.Copy(good, model, dir.File("copy"));
        Assert.Equal(File.ReadAllBytes(Path.Combine(good, PeftAdapter.WeightsFileName)), File.ReadAllBytes(copied.WeightFiles[0]));
    }

    [Fact]
    public void BrokenOsoraFoldersAndOtherPeftTypesAreRefused()
    {
        using var dir = new TempDir();
        string model = RecipeTests.WriteTinyModel(dir);
        manual_seed(2);

        var noInit = Osora();
        noInit.Remove(Key(Down, RunAdapterFormats.OsoraInitialS), out var s0);
        s0!.Dispose();
        AssertRefused(Write(dir, "no-init", OsoraConfig, noInit), model, dir, PeftAdapter.WeightsFileName, $"missing tensor '{Key(Down, RunAdapterFormats.OsoraInitialS)}'");
        AssertRefused(Write(dir, "other-shape", OsoraConfig, Osora(downIn: 48)), model, dir, "module 'model.layers.1.mlp.down_proj' adapts [32, 48]", "trained on another model");
        AssertRefused(Write(dir, "zeros", OsoraConfig.Replace("\"default\"", "\"zeros\""), Osora()), model, dir, PeftAdapter.ConfigFileName, "init_weights \"zeros\"");

        // A kind export has no merge for: refused by peft_type, naming the config and what is accepted.
        AssertRefused(Write(dir, "ia3", """{"peft_type": "IA3", "target_modules": ["down_proj"]}""", new() { [Key(Down, "ia3_l")] = randn(64) }),
            model, dir, PeftAdapter.ConfigFileName, "peft_type \"IA3\"", "\"LORA\", \"VERA\", \"OSORA\"");

        string good = Write(dir, "good", OsoraConfig, Osora());
        Assert.Equal(1, MergedModelExport.Merge(good, model, dir.File("merged"), 1L << 30).MergedModules);
    }
}
