"""Transcripts: what the resident and the bot said, turn by turn."""

from fastapi import APIRouter

from app.client_address import ClientIpDep
from app.deps import SessionDep, TranscriptReaderDep
from app.schemas import ConversationOut, Id, error_responses
from conversations.reading import read_transcript

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])


@router.get(
    "/{conversation_id}",
    summary="A conversation's transcript",
    responses=error_responses(401, 403, 404),
)
def get_conversation(
    conversation_id: Id, session: SessionDep, user: TranscriptReaderDep, ip: ClientIpDep
) -> ConversationOut:
    return ConversationOut.of(*read_transcript(session, user, conversation_id, ip))
