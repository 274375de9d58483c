"""Transcripts: what the resident and the bot said, turn by turn."""

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import contains_eager, selectinload

from access.auth import audit, in_scope
from app.deps import SessionDep, TranscriptReaderDep
from app.schemas import ConversationOut, ErrorOut, Id
from models import Conversation, Declaration

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])


@router.get(
    "/{conversation_id}",
    summary="A conversation's transcript",
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}},
)
def get_conversation(
    conversation_id: Id, request: Request, session: SessionDep, user: TranscriptReaderDep
) -> ConversationOut:
    stmt = in_scope(
        select(Conversation).join(Conversation.person).where(Conversation.id == conversation_id), user
    ).options(contains_eager(Conversation.person), selectinload(Conversation.turns))
    conversation = session.scalar(stmt)
    if conversation is None:
        raise HTTPException(404, f"no conversation {conversation_id} in your scope")
    declaration_id = session.scalar(select(Declaration.id).where(Declaration.conversation_id == conversation.id))
    audit(
        session,
        user,
        "transcript.read",
        "conversation",
        [conversation.id],
        request.client and request.client.host,
    )
    return ConversationOut.of(conversation, declaration_id)
