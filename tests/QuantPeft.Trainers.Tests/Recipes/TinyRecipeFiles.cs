using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Data.Demo;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Recipes;

/// <summary>The model folder and upper-casing data the recipe-level tests train on.</summary>
internal static class TinyRecipeFiles
{
    /// <summary>Writes a seeded byte-level model of <paramref name="spec"/> to <paramref name="folder"/>.</summary>
    public static string WriteModel(ModelSpec spec, string folder)
    {
        manual_seed(11);
        using var model = new CausalLm(spec);
        using (no_grad())
            foreach (var (name, p) in model.named_parameters())
                // The tied embedding is also the LM head: at std 0.05 its logits stay within about ±1.6, so the output is
                // nearly uniform whatever the adapters do; std 0.5 leaves the adapters room to move the loss.
                if (p.dim() == 2) nn.init.normal_(p, 0, name.Contains("embed") ? 0.5 : 0.05);
        ModelFolder.SaveByteLevel(model, folder);
        return folder;
    }

    /// <summary>Writes <c>train.jsonl</c> and <c>eval.jsonl</c> of the upper-casing task (seed 5) into <paramref name="dir"/>.</summary>
    public static (string Train, string Eval) WriteTask(TempDir dir, int trainRecords, int evalRecords)
    {
        (var train, var eval) = UpperCaseTask.Generate(5, trainRecords, evalRecords);
        string trainPath = dir.File("train.jsonl"), evalPath = dir.File("eval.jsonl");
        JsonlDatasetWriter.Write(trainPath, train);
        JsonlDatasetWriter.Write(evalPath, eval);
        return (trainPath, evalPath);
    }
}
