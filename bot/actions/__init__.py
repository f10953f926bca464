"""Custom actions (rasa-sdk), one module per skill. Thin: read slots, call a service, return events."""

from bot.actions.faq import ActionAnswerFaq, ActionFaqFeedback
from bot.actions.handoff import ActionRecordCsat, ActionRequestHandoff
from bot.actions.orders import ActionCheckOrderStatus, ValidateOrderStatusForm
from bot.actions.recommend import ActionOfferIfLikely, ActionRecommendationFeedback, ActionRecommendProducts

__all__ = [
    "ActionAnswerFaq",
    "ActionCheckOrderStatus",
    "ActionFaqFeedback",
    "ActionOfferIfLikely",
    "ActionRecommendProducts",
    "ActionRecommendationFeedback",
    "ActionRecordCsat",
    "ActionRequestHandoff",
    "ValidateOrderStatusForm",
]
