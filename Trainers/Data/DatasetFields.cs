namespace QuantPeft.Trainers.Data;

/// <summary>
/// The names under which a JSONL file keeps each field, for files whose columns are named differently from the
/// shapes QuantPeft reads (<c>--field output=answer</c>). Names are case-sensitive, as JSON is.
/// </summary>
public sealed record DatasetFields
{
    /// <summary>The standard names.</summary>
    public static DatasetFields Default { get; } = new();

    /// <summary>Plain text.</summary>
    public string Text { get; init; } = "text";
    /// <summary>Prompt of a prompt/completion record.</summary>
    public string Prompt { get; init; } = "prompt";
    /// <summary>Completion of a prompt/completion record.</summary>
    public string Completion { get; init; } = "completion";
    /// <summary>Messages of a chat record (<c>role</c>, <c>content</c>).</summary>
    public string Messages { get; init; } = "messages";
    /// <summary>Alpaca instruction.</summary>
    public string Instruction { get; init; } = "instruction";
    /// <summary>Alpaca optional input.</summary>
    public string Input { get; init; } = "input";
    /// <summary>Alpaca output.</summary>
    public string Output { get; init; } = "output";
    /// <summary>Alpaca optional system prompt.</summary>
    public string System { get; init; } = "system";
    /// <summary>ShareGPT turns.</summary>
    public string Conversations { get; init; } = "conversations";
    /// <summary>ShareGPT speaker of a turn.</summary>
    public string From { get; init; } = "from";
    /// <summary>ShareGPT text of a turn.</summary>
    public string Value { get; init; } = "value";

    /// <summary>The canonical field names that can be mapped.</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["text", "prompt", "completion", "messages", "instruction", "input", "output", "system", "conversations", "from", "value"];

    /// <summary>Parses <c>name=column</c> pairs (as given to <c>--field</c>).</summary>
    /// <exception cref="DatasetOptionsException">An unknown field name or a malformed pair; the message names it.</exception>
    public static DatasetFields Parse(IEnumerable<string> pairs)
    {
        DatasetFields f = Default;
        foreach (string pair in pairs)
        {
            int eq = pair.IndexOf('=');
            string name = eq > 0 ? pair[..eq].Trim() : "";
            string column = eq > 0 ? pair[(eq + 1)..].Trim() : "";
            if (name.Length == 0 || column.Length == 0)
                throw new DatasetOptionsException($"--field: expected FIELD=COLUMN (for example output=answer), found '{pair}'");
            f = name switch
            {
                "text" => f with { Text = column },
                "prompt" => f with { Prompt = column },
                "completion" => f with { Completion = column },
                "messages" => f with { Messages = column },
                "instruction" => f with { Instruction = column },
                "input" => f with { Input = column },
                "output" => f with { Output = column },
                "system" => f with { System = column },
                "conversations" => f with { Conversations = column },
                "from" => f with { From = column },
                "value" => f with { Value = column },
                _ => throw new DatasetOptionsException($"--field: unknown field '{name}'; expected one of {string.Join(", ", Names)}"),
            };
        }
        return f;
    }
}
