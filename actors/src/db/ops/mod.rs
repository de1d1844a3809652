//! The typed operations the `DbActor` serves, one module per resource.
//!
//! Statements go through `query_typed`: parameter types are given up front,
//! so each query is one round trip with no separate prepare.

pub mod conversation;
pub mod food;
pub mod gamification;
pub mod idempotency;
pub mod meals;
pub mod memories;
pub mod reminders;
mod system;
pub mod users;

pub use food::{
    DeleteFoodEntry, FoodDay, FoodEntryRow, GetFoodDay, LogFood, NewFoodEntry, NutritionSource,
};
pub use gamification::Streaks;
pub use gamification::{GetAchievements, GetStreaks, GetXp, StreakRow};
pub use idempotency::{
    Claim, ClaimIdempotencyKey, CompleteIdempotencyKey, IdempotencyScope, PurgeIdempotencyKeys,
    ReleaseIdempotencyKey,
};
pub use meals::{
    CreateMeal, DeleteMeal, GetMeal, GetMealHistory, ListMeals, LogMeal, LoggedMeal, MealFood,
    MealHistory, MealHit, MealRow, MealTotals, NewMeal, SearchMeals, UpdateMeal,
};
pub use reminders::{
    ClaimDueReminders, CompleteReminder, CreateReminder, DeleteReminder, FiredReminder,
    GetReminderStatus, ListReminders, ReminderRow, ReminderStatus, Schedule, SetWebhookStatus,
    WebhookStatus,
};
pub use system::Ping;
pub use users::{lock_user_tz, CreateUser, DeleteUser, GetUser, UserRow};
pub use users::{ClearConversation, SetPreference, SetProfileField};
