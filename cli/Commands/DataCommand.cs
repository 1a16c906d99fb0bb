using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using QuantPeft.Formats;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Demo;
using QuantPeft.Trainers.Recipes;
using Spectre.Console;

namespace QuantPeft.Cli.Commands;

/// <summary>
/// <c>qpeft data preview MODEL --data FILE [--rows N] [--json]</c>: the first examples rendered as training renders them,
/// with the trained spans in colour (or as character offsets in JSON) and the totals of the whole file.
/// </summary>
internal static class DataCommand
{
    public static Command Create()
    {
        var model = new Argument<string?>("model") { Description = "Model folder (tokenizer, chat template); default: the built-in demo model", Arity = ArgumentArity.ZeroOrOne };
        var data = new Option<string>("--data") { Description = "JSONL file to preview", Required = true };
        var rows = new Option<int>("--rows") { Description = "Examples to show", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Write JSON: {\"examples\": [{\"line\", \"text\", \"tokens\", \"trained\": [[start, end], ...]}], \"totals\": {...}}" };
        var seq = new Option<int?>("--seq") { Description = "Tokens per row, as in train" };
        var flags = new DataFlags();
        var preview = new Command("preview", "Show how training renders, tokenizes and masks the first examples, with totals for the whole file") { model, data, rows, json, seq };
        flags.AddTo(preview);
        preview.SetAction(parse => CliRunner.Run(() =>
        {
            int n = parse.GetValue(rows);
            if (n < 1) throw new QuantPeftException($"--rows: must be at least 1; found {n}");
            string folder = parse.GetValue(model) ?? DemoModel.ShippedFolder()
                ?? throw new QuantPeftException("MODEL: no model folder given and the built-in demo model is missing");
            ModelFolder.Check(folder);
            var spec = ModelFolder.ReadSpec(folder);
            var tokenizer = ModelFolder.ReadTokenizer(folder);
            var template = ChatTemplate.Resolve(parse.GetValue(flags.ChatTemplate), folder);
            var options = new DatasetOptions
            {
                SequenceLength = parse.GetValue(seq) ?? new FinetuneOptions { ModelFolder = "", DataPath = "" }.SequenceLength,
                Layout = DataFlags.Layout(DataFlags.ParsePacking(parse.GetValue(flags.Packing))),
                Truncation = DataFlags.ParseTruncation(parse.GetValue(flags.Truncation)!),
                Fields = DatasetFields.Parse(parse.GetValue(flags.Fields) ?? []),
            };
            DataPreviewResult result = DataPreview.Run(parse.GetValue(data)!, tokenizer, template, options, spec.MaxPositionEmbeddings, n);
            if (parse.GetValue(json)) Console.Out.WriteLine(Json(result).ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            else Show(result, ConsoleFactory.Create(), options.SequenceLength);
            return CliRunner.Ok;
        }));
        return new Command("data", "Inspect training data as QuantPeft prepares it") { preview };
    }

    private static JsonObject Json(DataPreviewResult r) => new()
    {
        ["examples"] = new JsonArray([.. r.Examples.Select(e => (JsonNode)new JsonObject
        {
            ["line"] = e.Line,
            ["text"] = e.Text,
            ["tokens"] = e.Tokens,
            ["trained"] = new JsonArray([.. e.Trained.Select(s => (JsonNode)new JsonArray(s.Start, s.End))]),
            ["fate"] = e.Fate,
        })]),
        ["totals"] = new JsonObject
        {
            ["examples"] = r.Stats.Records,
            ["rows"] = r.Stats.TrainRows,
            ["tokens"] = r.Stats.TrainTokens,
            ["trained_tokens"] = r.Stats.TrainTargets,
            ["truncated"] = r.Stats.Truncated,
            ["dropped"] = r.Stats.Dropped,
            ["untrained_turns"] = r.Stats.UntrainedTurns,
            ["packing"] = r.Stats.Layout == RowLayout.Segmented ? "on" : "off",
            ["density"] = Math.Round(r.Stats.Density, 4),
        },
        ["template"] = r.TemplateReason,
    };

    private static void Show(DataPreviewResult r, IAnsiConsole console, int seq)
    {
        console.MarkupLine($"[bold]template[/] {Markup.Escape(r.TemplateReason)}");
        console.MarkupLine("[green on grey15]trained[/] / [grey]not trained[/]");
        foreach (PreviewExample e in r.Examples)
        {
            console.Write(new Rule($"line {e.Line}: {e.Tokens} tokens{(e.Fate == "kept" ? "" : $", {e.Fate} (seq {seq})")}") { Justification = Justify.Left });
            var markup = new System.Text.StringBuilder();
            int at = 0;
            foreach (var (start, end) in e.Trained)
            {
                if (start > at) markup.Append("[grey]").Append(Markup.Escape(e.Text[at..start])).Append("[/]");
                markup.Append("[bold green on grey15]").Append(Markup.Escape(e.Text[start..end])).Append("[/]");
                at = end;
            }
            if (at < e.Text.Length) markup.Append("[grey]").Append(Markup.Escape(e.Text[at..])).Append("[/]");
            console.MarkupLine(markup.ToString());
        }
        var s = r.Stats;
        var table = new Table().AddColumns("examples", "packing", "rows", "density", "tokens", "trained tokens", "truncated", "dropped", "untrained turns");
        table.AddRow($"{s.Records:N0}", s.Layout == RowLayout.Segmented ? "on" : "off", $"{s.TrainRows:N0}", $"{s.Density:P1}", $"{s.TrainTokens:N0}",
            $"{s.TrainTargets:N0}", $"{s.Truncated:N0}", $"{s.Dropped:N0}", $"{s.UntrainedTurns:N0}");
        console.Write(table);
    }
}
