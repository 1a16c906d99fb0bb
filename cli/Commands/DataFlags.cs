using System.CommandLine;
using QuantPeft.Formats;
using QuantPeft.Trainers.Data;

namespace QuantPeft.Cli.Commands;

/// <summary>The data options <c>train</c> and <c>data preview</c> share, so a preview shows what a run would train on.</summary>
internal sealed class DataFlags
{
    public Option<string> Truncation { get; } = new("--truncation")
    {
        Description = "An example longer than --seq: error (stop, naming the line) | keep-start (cut the end) | drop (leave it out)",
        DefaultValueFactory = _ => "error",
    };

    public Option<string?> Packing { get; } = new("--packing")
    {
        Description = "Pack several examples into each row, kept apart (positions restart, attention stays within an example): on | off; default: on for plain-text data, off for prompt/completion and chat data",
    };

    public Option<string?> ChatTemplate { get; } = new("--chat-template")
    {
        Description = "Chat template: the model's own by default (chat_template.jinja or tokenizer_config.json); default | chatml | llama3 | PATH.jinja",
    };

    public Option<string[]> Fields { get; } = new("--field")
    {
        Description = "Map a field to the file's column, FIELD=COLUMN (repeatable): text, prompt, completion, messages, instruction, input, output, system, conversations, from, value",
        AllowMultipleArgumentsPerToken = false,
    };

    public void AddTo(Command command)
    {
        command.Add(Truncation);
        command.Add(Packing);
        command.Add(ChatTemplate);
        command.Add(Fields);
    }

    /// <summary>true for on, false for off, null (decide by the data's shape) when the flag is absent.</summary>
    public static bool? ParsePacking(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null => null,
        "on" => true,
        "off" => false,
        _ => throw new QuantPeftException($"--packing: expected on or off, found '{value}'"),
    };

    /// <summary>The row layout <see cref="ParsePacking"/> asks for.</summary>
    public static RowLayout Layout(bool? packing) => packing switch { null => RowLayout.ByShape, true => RowLayout.Segmented, false => RowLayout.Padded };

    /// <summary>The packing stats of a prepared dataset, for the console and report.md.</summary>
    public static string PackingLine(DatasetStats s) =>
        $"packing {(s.Layout == RowLayout.Segmented ? "on" : "off")}: {s.TrainExamples:N0} examples in {s.TrainRows:N0} rows, density {s.Density:P1}";

    public static TruncationPolicy ParseTruncation(string value) => value.Trim().ToLowerInvariant() switch
    {
        "error" => TruncationPolicy.Error,
        "keep-start" => TruncationPolicy.KeepStart,
        "drop" => TruncationPolicy.Drop,
        _ => throw new QuantPeftException($"--truncation: expected error, keep-start or drop, found '{value}'"),
    };
}
