using System.Text.Json;
using QuantPeft.Formats.Safetensors;

namespace QuantPeft.Cli.Tests;

/// <summary>A RandLoRA run writes the folder PEFT's RANDLORA reads (docs/formats.md), and the planner prices the method.</summary>
public class RandLoraTrainTests
{
    // The demo model: hidden 128, intermediate 384, 4 layers, every projection a target. PEFT sizes the shared bases by
    // the widest d_out (384, gate/up) and d_in (384, down): min = max = 384, n = ⌈384 / 8⌉ = 48; every projection has
    // min(d_in, d_out) = 128, so n = 16 bases of its own.
    [Fact]
    public void ARandLoraRunWritesPeftsRandLoraConfigTheBasesAndTheScalingsOfEveryProjection()
    {
        using var tmp = new TempFolder();
        string run = Path.Combine(tmp.Path, "run");
        var (exit, stdout, stderr) = CliHarness.Run(["train", "--steps", "2", "--batch", "8", "--method", "randlora", "--rank", "8", "--alpha", "160",
            "--seed", "7", "-o", run, .. TrainResumeCommandTests.SmallTask(tmp.Path)]);
        Assert.True(exit == 0, stderr + stdout);
        Assert.Contains("on 28 projections: 60,928 trainable parameters", stdout);   // 28 × 16 · (8 + 128)
        string adapter = Path.Combine(run, "adapter");
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(adapter, "adapter_config.json")));
        var root = config.RootElement;
        Assert.Equal("RANDLORA", root.GetProperty("peft_type").GetString());
        Assert.Equal(8, root.GetProperty("r").GetInt32());
        Assert.Equal(160, root.GetProperty("randlora_alpha").GetInt32());
        Assert.Equal(7, root.GetProperty("projection_prng_key").GetInt64());
        Assert.True(root.GetProperty("save_projection").GetBoolean());
        Assert.False(root.GetProperty("sparse").GetBoolean());
        Assert.False(root.GetProperty("very_sparse").GetBoolean());
        Assert.True(root.GetProperty("init_weights").GetBoolean());
        Assert.Equal(0.0, root.GetProperty("randlora_dropout").GetDouble());
        Assert.Equal("none", root.GetProperty("bias").GetString());
        Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            root.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()!));

        // PEFT's keys with the adapter name removed: base_model.randlora_A / _B (the model-level bases) and
        // base_model.model.<module>.randlora_lambda [r, n] / randlora_gamma [n, min].
        using var file = SafetensorsFile.Open(Path.Combine(adapter, "adapter_model.safetensors"));
        Assert.Equal(2 + 2 * 4 * 7, file.Tensors.Count);
        Assert.Equal(new long[] { 8, 1, 384 }, file.Tensors.Single(t => t.Name == "base_model.randlora_A").Shape);
        Assert.Equal(new long[] { 384, 48, 8 }, file.Tensors.Single(t => t.Name == "base_model.randlora_B").Shape);
        foreach (var module in new[] { "model.layers.0.self_attn.q_proj", "model.layers.3.mlp.down_proj", "model.layers.2.mlp.up_proj" })
        {
            Assert.Equal(new long[] { 8, 16 }, file.Tensors.Single(t => t.Name == $"base_model.model.{module}.randlora_lambda").Shape);
            Assert.Equal(new long[] { 16, 128 }, file.Tensors.Single(t => t.Name == $"base_model.model.{module}.randlora_gamma").Shape);
        }
        Assert.All(file.Tensors.Where(t => !t.Name.StartsWith("base_model.randlora_", StringComparison.Ordinal)),
            t => Assert.Matches(@"\.randlora_(lambda|gamma)$", t.Name));
    }

    [Fact]
    public void ThePlannerPricesARandLoraRun()
    {
        var (exit, stdout, stderr) = CliHarness.Run("plan", CliHarness.DemoModel(), "--method", "randlora", "--rank", "8");
        Assert.True(exit == 0, stderr + stdout);
        Assert.Contains("randlora r8 all-linear | bf16 | adamw | b8", stdout);
        // adapter weights: (60,928 trained + 8·384 + 384·48·8 shared) f32 values = 845,824 bytes
        Assert.Contains("845,824", stdout);
    }
}
