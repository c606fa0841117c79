"""The names shared by the files lit_al writes for people and the readers of their answers."""

CSV_FILE = "to_label.csv"
LABEL_STUDIO_TASKS = "label_studio_tasks.json"
LABEL_STUDIO_CONFIG = "label_studio_config.xml"
JSONL_FILE = "to_label.jsonl"
#: Name of the label question in every format (Label Studio ``from_name``, Argilla question).
QUESTION = "label"
#: The task data key that carries the example id to Label Studio and back. Not ``id``: Label
#: Studio's JSON-MIN and CSV exports write the task's own number into ``id`` over ``data.id``.
ID_KEY = "lit_al_id"
#: The multi-label answer "no label applies" in a CSV cell.
EMPTY_SET = "[]"
