from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class RelinkRequest(_message.Message):
    __slots__ = ("model_path", "settings_path", "models_dir", "dry_run", "report_dir", "seed", "reload_scorer")
    MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_PATH_FIELD_NUMBER: _ClassVar[int]
    MODELS_DIR_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    REPORT_DIR_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    RELOAD_SCORER_FIELD_NUMBER: _ClassVar[int]
    model_path: str
    settings_path: str
    models_dir: str
    dry_run: bool
    report_dir: str
    seed: int
    reload_scorer: bool
    def __init__(self, model_path: _Optional[str] = ..., settings_path: _Optional[str] = ..., models_dir: _Optional[str] = ..., dry_run: _Optional[bool] = ..., report_dir: _Optional[str] = ..., seed: _Optional[int] = ..., reload_scorer: _Optional[bool] = ...) -> None: ...

class RelinkProgress(_message.Message):
    __slots__ = ("step", "summary", "report_json", "report_html_path")
    STEP_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    REPORT_HTML_PATH_FIELD_NUMBER: _ClassVar[int]
    step: str
    summary: str
    report_json: str
    report_html_path: str
    def __init__(self, step: _Optional[str] = ..., summary: _Optional[str] = ..., report_json: _Optional[str] = ..., report_html_path: _Optional[str] = ...) -> None: ...
