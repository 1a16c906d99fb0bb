using System.CommandLine;
using QuantPeft.Cli.Inspect;
using Spectre.Console;

namespace QuantPeft.Cli.Commands;

/// <summary><c>qpeft inspect PATH [--json]</c>: what a checkpoint holds, read from headers only.</summary>
internal static class InspectCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "A .safetensors file, a model.safetensors.index.json, a model folder, or a config.json" };
        var json = new Option<bool>("--json") { Description = "Print JSON (fields: parameters, bytes, model, dtypes, tensors)" };
        var command = new Command("inspect", "Show a checkpoint's architecture, tensors and totals without reading tensor data") { path, json };
        command.SetAction(parse => CliRunner.Run(() =>
        {
            CheckpointInventory inv = CheckpointInventory.Load(parse.GetValue(path)!);
            if (parse.GetValue(json)) Console.Out.WriteLine(InspectJson.Write(inv));
            else Render(inv, ConsoleFactory.Create());
            return CliRunner.Ok;
        }));
        return command;
    }

    internal static void Render(CheckpointInventory inv, IAnsiConsole console)
    {
        if (inv.Spec is { } s)
        {
            var model = new Table().Title($"[bold]{Markup.Escape(s.ModelType)}[/] ({Markup.Escape(inv.ConfigPath!)})").AddColumns("field", "value");
            model.AddRow("layers", s.NumLayers.ToString());
            model.AddRow("hidden / intermediate", $"{s.HiddenSize} / {s.IntermediateSize}");
            model.AddRow("heads / kv heads / head dim", $"{s.NumHeads} / {s.NumKvHeads} / {s.HeadDim}");
            model.AddRow("vocab", s.VocabSize.ToString());
            model.AddRow("tied embeddings", s.TieWordEmbeddings.ToString());
            model.AddRow("rope theta / scaling", $"{s.RopeTheta} / {(s.RopeScaling is { } r ? $"{r.Type} x{r.Factor}" : "none")}");
            model.AddRow("attention bias", s.AttentionBias.ToString());
            model.AddRow("max positions", s.MaxPositionEmbeddings.ToString());
            model.AddRow("parameters (from config)", s.ParameterCount.ToString("N0"));
            console.Write(model);
        }
        if (inv.Tensors.Count > 0)
        {
            var tensors = new Table().AddColumns("tensor", "dtype", "shape", "bytes", "file");
            foreach (TensorRow t in inv.Tensors)
                tensors.AddRow(Markup.Escape(t.Name), t.DType, Markup.Escape("[" + string.Join(", ", t.Shape) + "]"), t.Bytes.ToString("N0"), Markup.Escape(t.File));
            console.Write(tensors);
            var totals = new Table().Title("totals").AddColumns("dtype", "tensors", "parameters", "bytes");
            foreach (DTypeTotal d in inv.ByDType)
                totals.AddRow(d.DType, d.Tensors.ToString(), d.Elements.ToString("N0"), d.Bytes.ToString("N0"));
            totals.AddRow("[bold]all[/]", inv.Tensors.Count.ToString(), $"[bold]{inv.Parameters:N0}[/]", $"[bold]{inv.Bytes:N0}[/]");
            console.Write(totals);
        }
    }
}
