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
        command.Add(ChatTemplate);
        command.Add(Fields);
    }

    public static TruncationPolicy ParseTruncation(string value) => value.Trim().ToLowerInvariant() switch
    {
        "error" => TruncationPolicy.Error,
        "keep-start" => TruncationPolicy.KeepStart,
        "drop" => TruncationPolicy.Drop,
        _ => throw new QuantPeftException($"--truncation: expected error, keep-start or drop, found '{value}'"),
    };
}
