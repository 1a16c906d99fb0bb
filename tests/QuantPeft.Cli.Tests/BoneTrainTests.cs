using System.Text.Json;
using QuantPeft.Formats.Safetensors;

namespace QuantPeft.Cli.Tests;

/// <summary>A Bone run writes the folder PEFT's Bone reads (docs/formats.md), and the planner prices the method.</summary>
public class BoneTrainTests
{
    [Fact]
    public void ABoneRunWritesPeftsBoneConfigAndOneBlockPerProjection()
    {
        using var tmp = new TempFolder();
        string run = Path.Combine(tmp.Path, "run");
        var (exit, stdout, stderr) = CliHarness.Run(["train", "--steps", "2", "--batch", "8", "--method", "bone", "--rank", "8", "-o", run,
            .. TrainResumeCommandTests.SmallTask(tmp.Path)]);
        Assert.True(exit == 0, stderr + stdout);
        string adapter = Path.Combine(run, "adapter");
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(adapter, "adapter_config.json")));
        var root = config.RootElement;
        Assert.Equal("BONE", root.GetProperty("peft_type").GetString());
        Assert.Equal(8, root.GetProperty("r").GetInt32());
        Assert.True(root.GetProperty("init_weights").GetBoolean());   // the Bone variant; "bat" would be Bat
        Assert.Equal("none", root.GetProperty("bias").GetString());
        Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            root.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()!));

        // PEFT's key for adapter "default" with the adapter name removed: base_model.model.<module>.bone_block, [r, out_features].
        using var file = SafetensorsFile.Open(Path.Combine(adapter, "adapter_model.safetensors"));
        Assert.Equal(4 * 7, file.Tensors.Count);
        var q = file.Tensors.Single(t => t.Name == "base_model.model.model.layers.0.self_attn.q_proj.bone_block");
        var down = file.Tensors.Single(t => t.Name == "base_model.model.model.layers.3.mlp.down_proj.bone_block");
        Assert.Equal(8, q.Shape[0]);
        Assert.Equal(8, down.Shape[0]);
        Assert.All(file.Tensors, t => Assert.EndsWith(".bone_block", t.Name));
    }

    [Fact]
    public void ThePlannerPricesABoneRun()
    {
        var (exit, stdout, stderr) = CliHarness.Run("plan", CliHarness.DemoModel(), "--method", "bone", "--rank", "8");
        Assert.True(exit == 0, stderr + stdout);
        Assert.Contains("bone r8 all-linear | bf16 | adamw | b8", stdout);
        Assert.Contains("180,224", stdout);   // adapter weights: 45,056 f32 values = 4 layers × r 8 × (4·128 + 2·384 + 128) outputs, what the run trains
    }
}
